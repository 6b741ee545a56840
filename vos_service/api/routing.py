"""gRPC metadata for a fleet of replicas behind a proxy (deploy/haproxy): which stream, which replica.

Every call about one stream carries its id in `x-vos-stream-id`, so a proxy hashing on that
header sends StreamFrames, AddPrompt, RemoveObject, GetStream and CloseStream of one stream to
the replica that holds it. Each replica names itself in `x-vos-replica` (initial metadata of
every response) and in StreamInfo.replica.
"""

from __future__ import annotations

import os
import socket
from typing import Iterable, Optional

from .errors import InvalidRequestError

STREAM_ID_KEY = "x-vos-stream-id"
REPLICA_KEY = "x-vos-replica"


def routing(stream_id: str) -> tuple[tuple[str, str], ...]:
    """The metadata every call about one stream carries."""
    return ((STREAM_ID_KEY, stream_id),)


def replica_name(configured: Optional[str]) -> str:
    """server.replica_id, else host name and pid (unique on one machine, readable in a fleet)."""
    return configured or f"{socket.gethostname()}-{os.getpid()}"


def check_routing(metadata: Iterable, stream_id: str) -> None:
    """A call whose routing header names another stream than its message would be misrouted."""
    for key, value in metadata or ():
        if key == STREAM_ID_KEY and value != stream_id:
            raise InvalidRequestError(f"{STREAM_ID_KEY} metadata {str(value)[:140]!r} is not the request's "
                                      f"stream_id {stream_id[:140]!r}")
