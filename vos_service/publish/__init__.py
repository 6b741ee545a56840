"""Publishing masklets and lifecycle events to Redis Streams.

schema.py     key scheme and message dataclasses (the wire format readers decode)
publisher.py  RedisPublisher: bounded buffer, background sender, reconnect with backoff
embedded.py   EmbeddedRedis: a real redis-server child process when no URL is configured

Plain threads and redis-py: no asyncio, no grpc, no torch.
"""

from vos_service.publish.embedded import EmbeddedRedis, RedisLaunchError, find_redis_server, start_redis
from vos_service.publish.publisher import PublisherStats, RedisPublisher
from vos_service.publish.schema import (
    EVENTS_KEY,
    EventMessage,
    EventType,
    MaskletMessage,
    ObjectMasklet,
    Publishable,
    masklets_key,
)

__all__ = [
    "EVENTS_KEY", "EmbeddedRedis", "EventMessage", "EventType", "MaskletMessage", "ObjectMasklet",
    "Publishable", "PublisherStats", "RedisLaunchError", "RedisPublisher", "find_redis_server",
    "masklets_key", "start_redis",
]
