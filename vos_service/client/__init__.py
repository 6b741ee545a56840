"""Python client of VosService: asyncio (VosClient) and blocking (SyncVosClient)."""

from .client import StreamCall, VosClient, encode_frame
from .credentials import Credentials
from .sync import SyncVosClient
from .types import Backoff, ClientFrame, Closed, Dropped, Masklet, Opened, Reconnecting, Result, StreamEvent

__all__ = ["Backoff", "ClientFrame", "Closed", "Credentials", "Dropped", "Masklet", "Opened", "Reconnecting", "Result",
           "StreamCall", "StreamEvent", "SyncVosClient", "VosClient", "encode_frame"]
