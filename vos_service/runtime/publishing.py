"""The runtime's Publisher backed by Redis Streams (vos_service.publish).

Encodes FrameOutputs as MaskletMessages (COCO RLE per object) and lifecycle
events as EventMessages; RedisPublisher buffers and never blocks the worker.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from ..metrics import Metrics
from ..publish.publisher import ExpiryGuard, RedisPublisher
from ..publish.schema import EventMessage, EventType, MaskletMessage, ObjectMasklet, lease_key, masklets_key
from .types import FrameOutput


def masklet_message(output: FrameOutput) -> MaskletMessage:
    objs = tuple(ObjectMasklet(obj_id=o.obj_id, rle=rle, score=o.score, visible=o.visible,
                               iou=o.iou, box=o.box, revision=o.revision)
                 for o, rle in zip(output.result.objects, output.rles))
    return MaskletMessage(output.stream_id, output.frame_index, objs, capture_ts=output.capture_ts,
                          revision=output.revision)


class RedisStreamsPublisher:
    def __init__(self, url: str, *, maxlen: int, buffer_size: int, metrics: Metrics, key_ttl_s: int = 0) -> None:
        self.key_ttl_s = key_ttl_s  # a closed stream's masklet key expires after this long (0 = never)
        # in a fleet with leases: this replica's name, so a late expiry spares a key another replica serves
        self.lease_owner: Optional[str] = None
        self.redis = RedisPublisher(
            url, maxlen=maxlen, buffer_size=buffer_size,
            on_published=lambda n: metrics.published.inc(n),
            on_dropped=lambda n: metrics.publish_dropped.inc(n),
            on_failure=lambda: metrics.publish_failures.inc())
        metrics.redis_connected.set_function(lambda: float(self.redis.stats().connected))
        metrics.publish_buffered.set_function(lambda: float(self.redis.stats().buffered))

    def masklets(self, output: FrameOutput) -> None:
        self.redis.publish(masklet_message(output))

    def event(self, type: str, stream_id: str, **fields: Any) -> None:
        self.redis.publish(EventMessage(EventType(type), stream_id, time.time(),
                                        obj_id=fields.get("obj_id"), frame_index=fields.get("frame_index"),
                                        detail=fields.get("detail") or {}))

    def recent_masklets(self, stream_id: str, count: int) -> list[MaskletMessage]:
        """The stream's newest ``count`` masklets in Redis, newest first (what a resumed stream continues from)."""
        return [MaskletMessage.from_fields(f) for f in self.redis.last_entries(masklets_key(stream_id), count)]

    def stream_opened(self, stream_id: str) -> None:
        """The id may be back within a closed stream's TTL: its key must not expire while live."""
        if self.key_ttl_s > 0:
            self.redis.persist(masklets_key(stream_id))

    def stream_closed(self, stream_id: str) -> None:
        """Queued after the stream's last masklets, so the expiry applies to the complete key."""
        if self.key_ttl_s > 0:
            guard = None if self.lease_owner is None else ExpiryGuard(lease_key(stream_id), self.lease_owner)
            self.redis.expire(masklets_key(stream_id), self.key_ttl_s, guard)

    def close(self, timeout: float = 1.0) -> None:
        self.redis.close(timeout=timeout)
