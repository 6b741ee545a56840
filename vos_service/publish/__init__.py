"""Publishing masklets and lifecycle events to Redis Streams.

schema.py     key scheme and message dataclasses (the wire format readers decode)
publisher.py  RedisPublisher: bounded buffer, background sender, reconnect with jittered backoff
embedded.py   EmbeddedRedis: a real redis-server child process when no URL is configured

Plain threads and redis-py: no asyncio, no grpc, no torch. The names below are imported
on first use, so a reader of the schema alone (`vos-service watch`) loads no publisher.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "EmbeddedRedis": "embedded", "RedisLaunchError": "embedded", "find_redis_server": "embedded",
    "start_redis": "embedded", "PublisherStats": "publisher", "RedisPublisher": "publisher",
    "EVENTS_KEY": "schema", "EventMessage": "schema", "EventType": "schema", "MaskletMessage": "schema",
    "ObjectMasklet": "schema", "Publishable": "schema", "masklets_key": "schema",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
