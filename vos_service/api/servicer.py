"""The VosService servicer (grpc.aio): validate, convert, enqueue, await.

Transport only. It never touches tensors and never blocks the event loop:
frames are decoded on a small thread pool, control messages (prompts,
removals, closes) go to the stream's control queue and their outcome is
awaited with asyncio.wrap_future. Domain errors map to status codes in
errors.py.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, AsyncIterator, NoReturn

import grpc

from ..config import Settings
from ..io.decode import FrameDecoder
from ..metrics import Metrics
from ..runtime import types as rt
from ..runtime.manager import StreamManager
from ..runtime.session import StreamSession
from . import convert, errors
from .gen.vos.v1 import vos_pb2 as pb
from .gen.vos.v1 import vos_pb2_grpc as pb_grpc
from .stream_call import FrameStream

log = logging.getLogger(__name__)

# How often an awaited control message checks whether its stream went away meanwhile
# (a control queued on a stream that closes first is never applied nor failed).
_CONTROL_POLL_S = 0.5


class VosServicer(pb_grpc.VosServiceServicer):
    def __init__(self, manager: StreamManager, settings: Settings, metrics: Metrics,
                 decode_threads: int = 4) -> None:
        self.manager = manager
        self.settings = settings
        self.metrics = metrics
        # cv2.imdecode and the H.264 decoder release the GIL: a few threads decode frames of
        # several streams at once while the loop keeps serving. One stream decodes in order.
        self.pool = ThreadPoolExecutor(max_workers=decode_threads, thread_name_prefix="vos-decode")
        # Set by graceful_stop *before* health turns NOT_SERVING and the manager starts draining
        # (in a thread, a moment later): from then on no new stream or frame is taken.
        self.draining = False

    @property
    def accepting(self) -> bool:
        return self.manager.accepting and not self.draining

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ---- StreamFrames ----------------------------------------------------------------

    async def StreamFrames(self, request_iterator: AsyncIterator[pb.StreamRequest],
                           context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamResponse]:
        requests = request_iterator.__aiter__()
        try:
            first = await requests.__anext__()
        except StopAsyncIteration:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the stream ended before its open message")
        if first.WhichOneof("msg") != "open":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "the first message of a stream must carry `open` (StreamOpen)")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        try:
            spec, fmt = convert.open_from_proto(first.open)
            limit = self.settings.streams.max_objects
            if len({p.obj_id for p in spec.initial_prompts}) > limit:
                raise rt.LimitExceededError(f"{len(spec.initial_prompts)} initial objects, over max_objects={limit}")
            if not self.accepting:
                raise rt.ShuttingDownError("the service is shutting down")
            decoder = FrameDecoder(fmt, spec.width, spec.height)
            session = self.manager.open(spec, FrameStream.sink_for(loop, events))
        except Exception as e:  # noqa: BLE001 - mapped to a status code
            await self._fail(context, e)
        log.info("stream %s opened (%s, %s, %dx%d)", spec.stream_id, spec.mode.value, fmt.value,
                 spec.width, spec.height)
        call = FrameStream(session, decoder, events, self.settings, self.metrics, self.pool,
                           lambda: self.accepting)
        async for response in call.responses(requests, context):
            yield response

    # ---- unary -------------------------------------------------------------------------

    async def AddPrompt(self, request: pb.AddPromptRequest, context) -> pb.AddPromptResponse:
        try:
            session = self._session(request.stream_id)
            prompt = convert.add_prompt_from_proto(request)
            prompt.prompt.validate(session.spec.height, session.spec.width)  # fail fast, before the queue
            outputs = await self._control(session, rt.Control("prompt", prompt=prompt))
        except Exception as e:  # noqa: BLE001
            await self._fail(context, e)
        return pb.AddPromptResponse(results=[convert.output_to_proto(o) for o in outputs])

    async def RemoveObject(self, request: pb.RemoveObjectRequest, context) -> pb.RemoveObjectResponse:
        try:
            session = self._session(request.stream_id)
            await self._control(session, rt.Control("remove", obj_id=request.obj_id))
        except Exception as e:  # noqa: BLE001
            await self._fail(context, e)
        return pb.RemoveObjectResponse()

    async def ListStreams(self, request: pb.ListStreamsRequest, context) -> pb.ListStreamsResponse:
        return pb.ListStreamsResponse(streams=[convert.stream_info_to_proto(i) for i in self.manager.list()])

    async def GetStream(self, request: pb.GetStreamRequest, context) -> pb.StreamInfo:
        try:
            return convert.stream_info_to_proto(self._session(request.stream_id).info())
        except Exception as e:  # noqa: BLE001
            await self._fail(context, e)

    async def CloseStream(self, request: pb.CloseStreamRequest, context) -> pb.CloseStreamResponse:
        try:
            session = self._session(request.stream_id)
            await self._control(session, rt.Control("close", reason="closed_by_request"))
        except Exception as e:  # noqa: BLE001
            await self._fail(context, e)
        return pb.CloseStreamResponse()

    # ---- helpers -----------------------------------------------------------------------

    def _session(self, stream_id: str) -> StreamSession:
        return self.manager.get(convert.check_stream_id(stream_id))

    async def _control(self, session: StreamSession, msg: rt.Control) -> Any:
        """Queue a control message on the stream and await the worker's outcome."""
        fut: Future = session.control(msg)
        waiter = asyncio.wrap_future(fut)
        # Mark a late outcome as seen, so an abandoned waiter logs no "never retrieved" error.
        waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        # asyncio.wait never cancels what it waits on: a cancelled RPC leaves the control to be
        # applied anyway (it may already be), rather than cancelling the worker's Future.
        while not fut.done():
            await asyncio.wait({waiter}, timeout=_CONTROL_POLL_S)
            if not fut.done() and session.closed:  # closed first: the message will never be applied
                if msg.kind == "close":
                    return None
                self._stream_gone(session)
        try:
            return await waiter
        except errors.CLIENT_ERRORS:
            raise
        except Exception:
            if session.closed:  # close_waiters failed the pending control ("stream closed")
                self._stream_gone(session)
            raise

    def _stream_gone(self, session: StreamSession) -> NoReturn:
        if not self.accepting:
            raise rt.ShuttingDownError("the service is shutting down")
        raise rt.StreamNotFoundError(f"stream {session.stream_id!r} was closed")

    async def _fail(self, context: grpc.aio.ServicerContext, exc: BaseException) -> NoReturn:
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if not isinstance(exc, errors.CLIENT_ERRORS):
            log.error("unexpected error in %s", type(self).__name__, exc_info=exc)
        await errors.abort(context, exc)
