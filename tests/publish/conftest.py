"""Real redis-server processes (EmbeddedRedis) and message factories for the publish tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis

from vos_service.publish import EmbeddedRedis, MaskletMessage, ObjectMasklet, start_redis

# Generous: the CI machine may be busy. Waits poll and return as soon as the condition holds.
DEADLINE_S = 15.0


@pytest.fixture
def redis_server() -> Iterator[EmbeddedRedis]:
    server = start_redis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    # A fresh client per use would also work; this one survives restarts because
    # redis-py reconnects on the next command.
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2.0)
    yield client
    client.close()


def wait_until(predicate: Callable[[], bool], timeout_s: float = DEADLINE_S, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")
        time.sleep(0.005)


def make_masklet(i: int, stream_id: str = "cam-1", n_objects: int = 2) -> MaskletMessage:
    """Frame i of a stream: distinct, decodable values per frame and object."""
    objects = tuple(
        ObjectMasklet(obj_id=k + 1, rle={"size": [48, 64], "counts": f"R{i}x{k}"},
                      score=0.5 * i - k, visible=(i + k) % 3 != 0, iou=None if k else 0.25,
                      box=None if (i + k) % 5 == 0 else (k, i % 40, k + 10, i % 40 + 8),
                      revision=i % 2)
        for k in range(n_objects))
    return MaskletMessage(stream_id=stream_id, frame_index=i, objects=objects,
                          capture_ts=None if i % 7 == 0 else 1000.0 + i / 30)


def read_masklets(client: redis.Redis, stream_id: str = "cam-1") -> list[MaskletMessage]:
    return [MaskletMessage.from_fields(fields)
            for _id, fields in client.xrange(f"vos:{stream_id}:masklets")]
