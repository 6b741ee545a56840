"""Real redis-server processes (EmbeddedRedis) and message factories for the publish tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import pytest
import redis

from vos_service.publish import EmbeddedRedis, MaskletMessage, ObjectMasklet, start_redis

# Generous: the CI machine may be busy. Waits poll and return as soon as the condition holds.
DEADLINE_S = 15.0

# The tests SIGKILL servers and then require every acknowledged entry back. The
# service's default, appendfsync everysec, has a window of a few ms a second in
# which Redis replies before its write(2) (see redis_conf.py); "always" has none,
# so these assertions hold every time instead of nearly always.
KILL_SAFE = dict(appendfsync="always")


@pytest.fixture
def redis_server() -> Iterator[EmbeddedRedis]:
    server = start_redis(**KILL_SAFE)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def supervised_redis() -> Iterator[EmbeddedRedis]:
    """A server that the supervisor restarts when it dies (fast backoff for the tests)."""
    server = start_redis(supervise=True, restart_backoff_initial_s=0.02, restart_backoff_max_s=0.2, **KILL_SAFE)
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


def first_of_each_frame(messages: Iterable[MaskletMessage]) -> list[MaskletMessage]:
    """Readers' dedupe: delivery is at-least-once, so a batch may have arrived twice."""
    seen, first = set(), []
    for msg in messages:
        if msg.frame_index not in seen:
            seen.add(msg.frame_index)
            first.append(msg)
    return first


def fill_until_oom(client: redis.Redis, prefix: str = "ballast", size: int = 64 * 1024) -> list[str]:
    """SET keys without an expiry until Redis answers OOM; the keys that went in."""
    keys: list[str] = []
    while True:
        key = f"{prefix}:{len(keys)}"
        try:
            client.set(key, b"x" * size)
        except redis.exceptions.OutOfMemoryError:
            return keys
        keys.append(key)
        assert len(keys) < 100_000, "maxmemory is not enforced"
