"""The VosService servicer (grpc.aio): validate, convert, enqueue, await.

Transport only. It never touches tensors and never blocks the event loop:
frames are decoded on a small thread pool, control messages (prompts,
removals, closes) go to the stream's control queue and their outcome is
awaited with asyncio.wrap_future. Domain errors map to status codes in
errors.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, AsyncIterator, NoReturn, Optional

import grpc
import redis

from ..config import Settings
from ..fleet.resume import RESUME_LOOKBACK, resume_prompts
from ..io.decode import FrameDecoder
from ..metrics import Metrics
from ..runtime import types as rt
from ..runtime.manager import StreamManager
from ..runtime.session import StreamSession
from . import convert, errors
from .auth import Authenticator, Identity, Permission, PermissionDeniedError
from .gen.vos.v1 import vos_pb2 as pb
from .gen.vos.v1 import vos_pb2_grpc as pb_grpc
from .routing import REPLICA_KEY, check_routing, replica_name
from .stream_call import FrameStream

log = logging.getLogger(__name__)

# How long a re-open of a stream id still held by another call waits for that call's clean-up.
_REOPEN_GRACE_S = 1.0


class VosServicer(pb_grpc.VosServiceServicer):
    def __init__(self, manager: StreamManager, settings: Settings, metrics: Metrics,
                 decode_threads: int = 4, auth: Optional[Authenticator] = None) -> None:
        self.manager = manager
        self.settings = settings
        self.metrics = metrics
        # cv2.imdecode and the H.264 decoder release the GIL: a few threads decode frames of
        # several streams at once while the loop keeps serving. One stream decodes in order.
        self.pool = ThreadPoolExecutor(max_workers=decode_threads, thread_name_prefix="vos-decode")
        # Set by graceful_stop *before* health turns NOT_SERVING and the manager starts draining
        # (in a thread, a moment later): from then on no new stream or frame is taken.
        self.draining = False
        # stream id -> (its session, the StreamFrames call that owns it), to tell a reconnect
        # from a second camera using the same id.
        self._owners: dict[str, tuple[StreamSession, grpc.aio.ServicerContext]] = {}
        self.auth = auth or Authenticator.from_settings(settings.auth)  # the service shares one with the console
        self.replica = replica_name(settings.server.replica_id)

    @property
    def accepting(self) -> bool:
        return self.manager.accepting and not self.draining

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ---- StreamFrames ----------------------------------------------------------------

    async def StreamFrames(self, request_iterator: AsyncIterator[pb.StreamRequest],
                           context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamResponse]:
        await self._name_replica(context)
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
            check_routing(context.invocation_metadata(), first.open.stream_id)
            identity = self._identity(context, Permission.STREAM, first.open.stream_id)
            if not self.accepting:
                raise rt.ShuttingDownError("the service is shutting down")
            quota = identity.quota
            convert.check_prompt_count(len(first.open.initial_prompts), self.settings.streams)
            if quota.max_objects is not None and len(first.open.initial_prompts) > quota.max_objects:
                raise rt.LimitExceededError(f"{len(first.open.initial_prompts)} initial objects, over "
                                            f"{identity.name!r}'s max_objects={quota.max_objects}")
            # Initial prompts may carry masks: decoded on the pool, never on the loop.
            spec, fmt = await loop.run_in_executor(self.pool, convert.open_from_proto, first.open,
                                                   self.settings.streams)
            spec = dataclasses.replace(spec, owner=identity.name, max_objects=quota.max_objects)
            if self.manager.leases is not None:  # before resuming: the journal is ours once the lease is
                await loop.run_in_executor(self.pool, self.manager.leases.acquire, spec.stream_id)
            if self.settings.streams.resume_from_redis and not spec.initial_prompts:
                spec = await loop.run_in_executor(self.pool, self._resumed, spec)
            decoder = FrameDecoder(fmt, spec.width, spec.height)
            session = await self._open(spec, FrameStream.sink_for(loop, events), context, quota.max_streams)
        except Exception as e:  # noqa: BLE001 - mapped to a status code
            if self.manager.leases is not None and not self.manager.is_open(first.open.stream_id):
                self.manager.leases.release(first.open.stream_id)  # taken above, but nothing opened
            await self._fail(context, e)
        log.info("stream %s opened (%s, %s, %dx%d)", spec.stream_id, spec.mode.value, fmt.value,
                 spec.width, spec.height)
        call = FrameStream(session, decoder, events, self.settings, self.metrics, self.pool,
                           lambda: self.accepting, self.manager.close, lambda: self.auth.take_frame(identity))
        try:
            async for response in call.responses(requests, context):
                yield response
        finally:
            if self._owners.get(spec.stream_id, (None,))[0] is session:
                del self._owners[spec.stream_id]

    def _resumed(self, spec: rt.StreamSpec) -> rt.StreamSpec:
        """The spec with the objects Redis last held of this stream as its initial prompts."""
        try:
            recent = self.manager.publisher.recent_masklets(spec.stream_id, RESUME_LOOKBACK)
        except redis.RedisError as e:  # refused, not opened empty: the client's backoff retries
            raise rt.UnavailableError(f"cannot read stream {spec.stream_id!r}'s masklets from Redis to resume "
                                      f"it: {e}") from e
        resumed = resume_prompts(recent, spec.height, spec.width, self.settings.streams.max_mask_rle_bytes)
        if resumed is None:
            return spec
        log.info("stream %s resumed from frame %d: objects %s (from earlier frames %s; skipped %s)", spec.stream_id,
                 resumed.from_frame, [p.obj_id for p in resumed.prompts], dict(resumed.earlier), list(resumed.skipped))
        self.metrics.streams_resumed.inc()
        return dataclasses.replace(spec, initial_prompts=resumed.prompts)

    async def _open(self, spec: rt.StreamSpec, sink, context: grpc.aio.ServicerContext,
                    owner_max_streams: Optional[int]) -> StreamSession:
        """Open the stream; a reconnect whose previous call is over (or about to be) gets in.

        A client that cancels and re-opens the same id at once can overtake its own cancel:
        the old call's clean-up has not run yet. If that call is done, its stream is closed
        here; otherwise ALREADY_EXISTS comes after a short grace for the clean-up to run.
        """
        deadline = asyncio.get_running_loop().time() + _REOPEN_GRACE_S
        while True:
            try:
                session = self.manager.open(spec, sink, owner_max_streams)
                break
            except rt.StreamExistsError:
                owner = self._owners.get(spec.stream_id)
                if owner is not None and owner[1].done():
                    self.manager.close(owner[0], rt.CloseReason.CLIENT_DISCONNECTED)
                    continue
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.02)
        self._owners[spec.stream_id] = (session, context)
        return session

    # ---- unary -------------------------------------------------------------------------

    async def AddPrompt(self, request: pb.AddPromptRequest, context) -> pb.AddPromptResponse:
        await self._name_replica(context)
        try:
            self._identity(context, Permission.PROMPT)
            session = self._session(request.stream_id, context)
            h, w = session.spec.height, session.spec.width
            # Fail fast, before the queue; a mask is decoded on the pool, never on the loop.
            prompt = await asyncio.get_running_loop().run_in_executor(
                self.pool, convert.add_prompt_from_proto, request, h, w, self.settings.streams)
            outputs = await self._control(session, rt.PromptControl(prompt))
        except Exception as e:  # noqa: BLE001
            await self._fail(context, e)
        return pb.AddPromptResponse(results=[convert.output_to_proto(o) for o in outputs])

    async def RemoveObject(self, request: pb.RemoveObjectRequest, context) -> pb.RemoveObjectResponse:
        await self._name_replica(context)
        try:
            self._identity(context, Permission.PROMPT)
            session = self._session(request.stream_id, context)
            await self._control(session, rt.RemoveControl(request.obj_id))
        except Exception as e:  # noqa: BLE001
            await self._fail(context, e)
        return pb.RemoveObjectResponse()

    async def ListStreams(self, request: pb.ListStreamsRequest, context) -> pb.ListStreamsResponse:
        await self._name_replica(context)
        try:
            self._identity(context, Permission.READ)
        except Exception as e:  # noqa: BLE001
            await self._fail(context, e)
        return pb.ListStreamsResponse(streams=[convert.stream_info_to_proto(i, self.replica)
                                               for i in self.manager.list()])

    async def GetStream(self, request: pb.GetStreamRequest, context) -> pb.StreamInfo:
        await self._name_replica(context)
        try:
            identity = self._identity(context)
            session = self._session(request.stream_id, context)
            self._owner_or(identity, session, Permission.READ)  # a camera may look at its own stream
            return convert.stream_info_to_proto(session.info(), self.replica)
        except Exception as e:  # noqa: BLE001
            await self._fail(context, e)

    async def CloseStream(self, request: pb.CloseStreamRequest, context) -> pb.CloseStreamResponse:
        await self._name_replica(context)
        try:
            identity = self._identity(context)
            session = self._session(request.stream_id, context)
            self._owner_or(identity, session, Permission.CLOSE)  # a camera may close its own stream
            self.manager.close(session, rt.CloseReason.CLOSED_BY_REQUEST)
        except Exception as e:  # noqa: BLE001
            await self._fail(context, e)
        return pb.CloseStreamResponse()

    # ---- helpers -----------------------------------------------------------------------

    def _identity(self, context: grpc.aio.ServicerContext, permission: Optional[Permission] = None,
                  stream_id: Optional[str] = None) -> Identity:
        """Who calls (UNAUTHENTICATED if nobody known) and, given a permission, whether they may."""
        cns = context.auth_context().get("x509_common_name", []) if self.auth.enabled else []
        identity = self.auth.identify(context.invocation_metadata() or (), cns)
        if permission is not None:
            self.auth.authorize(identity, permission, stream_id)
        return identity

    def _owner_or(self, identity: Identity, session: StreamSession, permission: Permission) -> None:
        if self.auth.enabled and session.owner == identity.name:
            return
        try:
            self.auth.authorize(identity, permission)
        except PermissionDeniedError:
            if self.auth.enabled and identity.may(Permission.STREAM):
                raise PermissionDeniedError(f"stream {session.stream_id!r} belongs to another camera") from None
            raise

    def _session(self, stream_id: str, context: Optional[grpc.aio.ServicerContext] = None) -> StreamSession:
        if context is not None:
            check_routing(context.invocation_metadata(), stream_id)
        return self.manager.get(convert.check_stream_id(stream_id))

    async def _name_replica(self, context: grpc.aio.ServicerContext) -> None:
        """Every response names the replica that answered (a fleet's operators and tests read it)."""
        await context.send_initial_metadata(((REPLICA_KEY, self.replica),))

    async def _control(self, session: StreamSession, msg: rt.Control) -> Any:
        """Queue a control message on the stream and await the worker's outcome."""
        fut: Future = session.control(msg)
        waiter = asyncio.wrap_future(fut)
        # Mark a late outcome as seen, so an abandoned waiter logs no "never retrieved" error.
        waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        # asyncio.wait never cancels what it waits on: a cancelled RPC leaves the control to be
        # applied anyway (it may already be), rather than cancelling the worker's Future. No
        # polling: a stream that closes first fails its pending controls (StreamManager.close).
        await asyncio.wait({waiter})
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
