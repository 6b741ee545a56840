"""SyncVosClient: VosClient for code without an event loop (the CLI, scripts, notebooks).

It runs a private event loop on a daemon thread; every method submits the
async call there and blocks for its result. `stream` reads the frame iterator
on a worker thread, so a slow source (a camera, a file decoder) never stalls
the loop that sends and receives.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any, Iterable, Iterator, Optional

from ..runtime.types import StreamInfo
from .client import FrameLike, VosClient
from .types import Result, StreamEvent

_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _from_thread(items: Iterable[FrameLike]) -> Any:
    it = iter(items)
    while (item := await asyncio.to_thread(next, it, _END)) is not _END:
        yield item


class SyncVosClient:
    def __init__(self, target: str, timeout: Optional[float] = None, **kwargs: Any) -> None:
        self.timeout = timeout  # seconds per unary call; None waits as long as the server takes
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vos-client", daemon=True)
        self._thread.start()
        self._client: VosClient = self._run(self._make(target, kwargs))

    @staticmethod
    async def _make(target: str, kwargs: dict) -> VosClient:
        return VosClient(target, **kwargs)  # the aio channel must be created on its loop

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> "SyncVosClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stream(self, stream_id: str, frames: Iterable[FrameLike], **kwargs: Any) -> Iterator[StreamEvent]:
        """As VosClient.stream; stopping the iteration early cancels the call."""
        events: queue.Queue = queue.Queue()

        async def run() -> None:
            try:
                async for event in self._client.stream(stream_id, _from_thread(frames), **kwargs):
                    events.put(event)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                events.put(_Failed(e))
            finally:
                events.put(_END)

        task = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            while (item := events.get()) is not _END:
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            task.cancel()

    def add_prompt(self, stream_id: str, obj_id: int, prompt: Any = None, **kwargs: Any) -> list[Result]:
        return self._run(self._client.add_prompt(stream_id, obj_id, prompt, **kwargs))

    def remove_object(self, stream_id: str, obj_id: int) -> None:
        self._run(self._client.remove_object(stream_id, obj_id))

    def list_streams(self) -> list[StreamInfo]:
        return self._run(self._client.list_streams())

    def get_stream(self, stream_id: str) -> StreamInfo:
        return self._run(self._client.get_stream(stream_id))

    def close_stream(self, stream_id: str) -> None:
        self._run(self._client.close_stream(stream_id))

    def wait_ready(self, timeout: float = 10.0) -> None:
        self._run(self._client.wait_ready(timeout))
