"""Python client of VosService: asyncio (VosClient) and blocking (SyncVosClient)."""

from .client import StreamCall, VosClient, encode_frame
from .credentials import Credentials
from .sync import SyncVosClient
from .types import ClientFrame, Closed, Dropped, Masklet, Opened, Result, StreamEvent

__all__ = ["ClientFrame", "Closed", "Credentials", "Dropped", "Masklet", "Opened", "Result", "StreamCall", "StreamEvent",
           "SyncVosClient", "VosClient", "encode_frame"]
