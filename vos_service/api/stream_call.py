"""One StreamFrames call: frames in -> the stream's session; session events -> responses.

Two coroutines per call, both on the event loop:

- the *reader* task takes requests, decodes each frame on a thread pool
  (order kept: it awaits one decode before reading the next request) and
  offers it to the session. LOSSLESS: when the queue is full `offer`
  returns a Future and the reader awaits it before reading on, so gRPC flow
  control pushes back on the client. LIVE: it never waits (the runtime drops
  the oldest waiting frame instead).
- the *writer* (`responses`, the call's generator) turns session events into
  responses. The worker thread hands them over through a thread-safe sink
  (call_soon_threadsafe into an asyncio.Queue).

gRPC ends a call only once, so a bad frame does not end it: it gets a
DropNotice "invalid: ..." and the stream goes on. Half-close: the frames sent
so far are finished, then the stream is closed ("client_closed") and the
call ends after the `closed` message with OK. Shutdown: `closed` ("shutdown"),
then the call ends UNAVAILABLE, so a client knows to reconnect elsewhere.
Cancel / disconnect: the generator is cancelled and the stream is closed at
once ("client_disconnected"); its id is free for a reconnect immediately.

Everything proportional to a request's size (image decode, prompt masks)
runs on the thread pool; the loop only does O(1) checks (index order, byte
and prompt counts) before handing a frame over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Optional

import grpc
import numpy as np

from ..config import Settings
from ..engine.types import Stage
from ..io.decode import FrameDecodeError, FrameDecoder, FrameFormat
from ..metrics import Metrics
from ..runtime import types as rt
from ..runtime.session import Sink, StreamSession
from ..runtime.types import CloseReason, DropReason
from . import convert, errors
from .errors import CLIENT_ERRORS, InvalidRequestError
from .gen.vos.v1 import vos_pb2 as pb

log = logging.getLogger(__name__)


# Closes after which the camera should re-open the stream (the proxy sends it to a live owner).
_RECONNECT = {
    CloseReason.SHUTDOWN: "the service is shutting down: reconnect (the stream was closed)",
    CloseReason.LEASE_LOST: "another replica owns this stream now: reconnect (the stream was closed here)",
}


@dataclass(frozen=True)
class _Meta:
    """What a frame request carried besides its pixels (held while H.264 buffers them)."""

    index: int
    capture_ts: Optional[float]
    received_at: float  # time.monotonic() when the request arrived: latency includes decoding
    prompts: tuple[rt.PromptSpec, ...]


@dataclass(frozen=True)
class _Rejected:
    """A frame the api refused (already counted in metrics)."""

    frame_index: int
    reason: DropReason
    text: str


@dataclass(frozen=True)
class _ReaderFailed:
    error: BaseException


class FrameStream:
    def __init__(self, session: StreamSession, decoder: FrameDecoder, events: asyncio.Queue,
                 settings: Settings, metrics: Metrics, pool: Executor, accepting: Callable[[], bool],
                 close: Callable[[StreamSession, CloseReason], object],
                 take_frame: Callable[[], bool] = lambda: True) -> None:
        self.session = session
        self.take_frame = take_frame  # the owner's max_fps quota (api.auth): False = over it
        self.close_session = close  # StreamManager.close: immediate, frees the id
        self.accepting = accepting  # False once the service drains for shutdown
        self.spec = session.spec
        self.decoder = decoder
        self.events = events  # StreamEvent | _Rejected | _ReaderFailed, in the order they happened
        self.settings = settings
        self.metrics = metrics
        self.pool = pool
        self.enqueued = 0  # frames the session took
        self.settled = 0  # of those, answered by a result or a drop (revised results excluded)
        self._progress = asyncio.Event()  # set whenever `settled` moves
        self._last_index: Optional[int] = None
        self._held: deque[_Meta] = deque()  # H.264 access units whose frame the decoder still holds

    @staticmethod
    def sink_for(loop: asyncio.AbstractEventLoop, events: asyncio.Queue) -> Sink:
        """A sink the worker thread (or any thread) may call: events hop onto the loop."""

        def sink(event: rt.StreamEvent) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the loop is closed: the call is long gone
                pass

        return sink

    # ---- writer ------------------------------------------------------------------------

    async def responses(self, requests: AsyncIterator[pb.StreamRequest],
                        context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamResponse]:
        reader = asyncio.create_task(self._read(requests), name=f"vos-read-{self.spec.stream_id}")
        try:
            yield pb.StreamResponse(opened=pb.Opened(stream_id=self.spec.stream_id))
            while True:
                event = await self.events.get()
                if isinstance(event, rt.FrameOutput):
                    if not event.revised:
                        self._settle()
                    yield pb.StreamResponse(result=convert.output_to_proto(event))
                elif isinstance(event, rt.DropNotice):  # from the runtime: queue_full | refused | error
                    self._settle()
                    self.metrics.frames_dropped.labels(event.reason.value).inc()
                    yield convert.drop_to_proto(event.frame_index, event.reason, event.text)
                elif isinstance(event, _Rejected):
                    yield convert.drop_to_proto(event.frame_index, event.reason, event.text)
                elif isinstance(event, rt.StreamClosed):
                    yield convert.closed_to_proto(event.reason, event.text)
                    if event.reason in _RECONNECT:  # not OK: the client should reconnect
                        await context.abort(grpc.StatusCode.UNAVAILABLE, _RECONNECT[event.reason])
                    return
                elif isinstance(event, _ReaderFailed):  # a fault, not a bad frame: end the call
                    await errors.abort(context, event.error)
        finally:
            reader.cancel()
            # Cancelled, disconnected or failed: free the stream (and its id) now.
            self.close_session(self.session, CloseReason.CLIENT_DISCONNECTED)

    def _settle(self) -> None:
        self.settled += 1
        self._progress.set()

    # ---- reader ------------------------------------------------------------------------

    async def _read(self, requests: AsyncIterator[pb.StreamRequest]) -> None:
        try:
            async for req in requests:
                if self.session.closed:
                    return
                if req.WhichOneof("msg") != "frame":
                    self._reject(-1, "only the first message opens a stream; later ones carry frames")
                    continue
                await self._frame(req.frame, time.monotonic())
            await self._finish()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the writer ends the call with it
            if not isinstance(e, CLIENT_ERRORS):
                log.exception("stream %s: reading frames failed", self.spec.stream_id)
            self.events.put_nowait(_ReaderFailed(e))

    async def _frame(self, frame: pb.Frame, received_at: float) -> None:
        self.metrics.frames_received.inc()
        while not self.take_frame():  # over the owner's frame rate
            if self.spec.mode is rt.StreamMode.LIVE:
                self._reject(frame.index, "over the frame rate quota (max_fps)", DropReason.RATE_LIMITED)
                return
            await asyncio.sleep(0.01)  # lossless: slow the client down instead (flow control)
        try:
            self._check(frame)
            rgb, prompts = await asyncio.get_running_loop().run_in_executor(self.pool, self._decode, frame)
        except CLIENT_ERRORS as e:
            self._reject(frame.index, str(e))
            return
        self._last_index = frame.index
        meta = _Meta(frame.index, frame.capture_ts if frame.HasField("capture_ts") else None, received_at, prompts)
        if self.decoder.format is FrameFormat.H264:
            # Frames come out of the decoder in order, possibly later than their access unit:
            # the n-th frame out takes the n-th access unit's index (none may come out yet).
            self._held.append(meta)
            if rgb is None:
                return
            meta = self._held.popleft()
        assert rgb is not None  # only H.264 holds frames back
        await self._offer(meta, rgb)

    def _check(self, frame: pb.Frame) -> None:
        """O(1) checks, on the loop, before any work proportional to the frame is queued."""
        if self._last_index is not None and frame.index <= self._last_index:
            raise InvalidRequestError(f"frame index {frame.index} is not above the previous {self._last_index}")
        limit = self.settings.streams.max_frame_bytes
        if len(frame.data) > limit:
            raise InvalidRequestError(f"frame is {len(frame.data)} bytes, over the limit of {limit} (max_frame_bytes)")
        convert.check_prompt_count(len(frame.prompts), self.settings.streams)

    def _decode(self, frame: pb.Frame) -> tuple[Optional[np.ndarray], tuple[rt.PromptSpec, ...]]:
        """Pool thread: the frame's prompts (all valid or an error), then bytes -> RGB (None while
        H.264 holds the frame back). Prompts first: a refused prompt costs no image decode."""
        prompts = convert.prompts_from_proto(frame.prompts, self.spec.height, self.spec.width,
                                             self.settings.streams)
        with self.metrics.stage(Stage.FRAME_DECODE):
            rgb = self.decoder.decode(frame.data, frame.width if frame.HasField("width") else None,
                                      frame.height if frame.HasField("height") else None)
        return rgb, prompts

    async def _offer(self, meta: _Meta, rgb: np.ndarray) -> None:
        if not self.accepting():
            # Draining for shutdown: frames already queued finish, new ones are refused
            # out loud (the drain would otherwise discard them silently at close).
            self._reject(meta.index, "the service is shutting down", DropReason.SHUTDOWN)
            return
        task = rt.FrameTask(meta.index, rgb, meta.capture_ts, meta.received_at, meta.prompts)
        while not self.session.closed:
            try:
                space = self.session.offer(task)
            except rt.ShuttingDownError:  # the drain began between the check above and now
                self._reject(meta.index, "the service is shutting down", DropReason.SHUTDOWN)
                return
            if space is None:
                self.enqueued += 1
                return
            # LOSSLESS and the queue is full: stop reading requests until the worker takes a
            # frame. This await is the backpressure the client feels through gRPC flow control.
            await asyncio.wrap_future(space)

    async def _finish(self) -> None:
        """The client half-closed: decode what H.264 still holds, finish queued frames, close."""
        if self.decoder.format is FrameFormat.H264 and not self.session.closed:
            try:
                rest = await asyncio.get_running_loop().run_in_executor(self.pool, self.decoder.flush)
            except FrameDecodeError as e:
                rest, reason = [], str(e)
            else:
                reason = "the h264 decoder returned no frame for this access unit"
            for rgb in rest:
                if self._held:
                    await self._offer(self._held.popleft(), rgb)
            while self._held:
                self._reject(self._held.popleft().index, reason)
        while self.settled < self.enqueued and not self.session.closed:
            self._progress.clear()
            await self._progress.wait()
        self.close_session(self.session, CloseReason.CLIENT_CLOSED)

    def _reject(self, index: int, text: str, reason: DropReason = DropReason.INVALID) -> None:
        self.metrics.frames_dropped.labels(reason.value).inc()
        self.session.last_drop = f"{reason.value}: {text}"
        self.events.put_nowait(_Rejected(index, reason, self.session.last_drop))
