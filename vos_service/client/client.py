"""VosClient: the asyncio client of VosService (the CLI, the tests and the console use it).

    async with VosClient("127.0.0.1:50051") as c:
        async for ev in c.stream("cam", frames, mode="lossless", initial_prompts=[(1, click)]):
            ...

or, to interleave sending and reading (e.g. a correction mid-stream):

    call = await c.open_stream("cam", 1280, 720)
    await call.send(0, rgb); ev = await call.read(); ...; await call.done_writing()

RPC errors surface as grpc.aio.AioRpcError (`.code()`, `.details()`).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, AsyncIterable, AsyncIterator, Iterable, Optional, Sequence, Union

import cv2
import grpc
import numpy as np

from ..api import convert
from ..api.gen.vos.v1 import vos_pb2 as pb
from ..api.gen.vos.v1 import vos_pb2_grpc as pb_grpc
from ..api.routing import routing
from ..engine.types import Prompt
from ..io.decode import FrameFormat
from ..runtime.types import StreamInfo, StreamMode
from .credentials import Credentials
from .types import (
    Backoff,
    ClientFrame,
    Dropped,
    PromptLike,
    Reconnecting,
    Result,
    StreamEvent,
    event_from_proto,
    format_to_proto,
    info_from_proto,
    mode_to_proto,
    result_from_proto,
)

_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
# What gRPC core reports (status INTERNAL) when a frame is written to a call whose connection just
# died: a transport failure, not a status the server sent, so a reconnect is the right answer.
_CORE_FAILURE = "Internal error from Core"
FrameLike = Union[ClientFrame, tuple]  # ClientFrame, (index, data) or (index, data, capture_ts)

DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # as the server's default: a 4K frame fits



def encode_frame(rgb: np.ndarray, fmt: FrameFormat, jpeg_quality: int = 90) -> bytes:
    """(H, W, 3) uint8 RGB -> the bytes of `fmt` (H.264 needs an encoder: send access units)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
    if fmt is FrameFormat.RGB:
        return np.ascontiguousarray(rgb).tobytes()
    if fmt is FrameFormat.BGR:
        return np.ascontiguousarray(rgb[..., ::-1]).tobytes()
    if fmt is FrameFormat.H264:
        raise ValueError("H.264 streams take encoded access units (bytes), not arrays")
    ext, params = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]) if fmt is FrameFormat.JPEG else (".png", [])
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"cannot encode the frame as {fmt.value}")
    return buf.tobytes()


def _as_frame(item: FrameLike) -> ClientFrame:
    return item if isinstance(item, ClientFrame) else ClientFrame(*item)


def _prompt_proto(p: PromptLike) -> pb.Prompt:
    if isinstance(p, pb.Prompt):
        return p
    return convert.prompt_to_proto(*p)


async def _aiter(items: Union[AsyncIterable, Iterable]) -> AsyncIterator:
    if hasattr(items, "__aiter__"):
        async for x in items:
            yield x
    else:  # a sync iterator runs on the loop: fine for lists; wrap slow sources in a thread
        for x in items:
            yield x


class StreamCall:
    """An open StreamFrames call: send frames, read events (iterate it), half-close, cancel."""

    def __init__(self, call: grpc.aio.StreamStreamCall, stream_id: str, fmt: FrameFormat,
                 jpeg_quality: int) -> None:
        self._call = call
        self.stream_id = stream_id
        self.format = fmt
        self.jpeg_quality = jpeg_quality

    async def send(self, index: int, data: Union[np.ndarray, bytes], capture_ts: Optional[float] = None,
                   prompts: Sequence[PromptLike] = ()) -> None:
        """Send one frame; waits while gRPC flow control holds the call (lossless backpressure)."""
        await self.send_frame(ClientFrame(index, data, capture_ts, prompts))

    async def send_frame(self, frame: ClientFrame) -> None:
        data = frame.data
        if isinstance(data, np.ndarray):  # encode off the loop: a 4K JPEG takes tens of ms
            data = await asyncio.to_thread(encode_frame, data, self.format, self.jpeg_quality)
        msg = pb.Frame(index=frame.index, data=bytes(data), prompts=[_prompt_proto(p) for p in frame.prompts])
        if frame.capture_ts is not None:
            msg.capture_ts = frame.capture_ts
        await self._call.write(pb.StreamRequest(frame=msg))

    async def done_writing(self) -> None:
        """Half-close: the server finishes the frames sent, then sends Closed and ends the call."""
        await self._call.done_writing()

    async def read(self) -> Optional[StreamEvent]:
        """The next event; None once the call ended (raises AioRpcError on an error status)."""
        msg = await self._call.read()
        if msg is grpc.aio.EOF:  # (read() raises AioRpcError when the call ended with an error)
            return None
        return event_from_proto(msg)

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        while (event := await self.read()) is not None:
            yield event

    async def replica(self) -> Optional[str]:
        """The replica that answered (its `x-vos-replica` response metadata)."""
        md = await self._call.initial_metadata()
        return dict(md or ()).get("x-vos-replica")

    def cancel(self) -> bool:
        """Drop the call (the server closes and frees the stream)."""
        return self._call.cancel()

    def done(self) -> bool:
        return self._call.done()


class VosClient:
    def __init__(self, target: str, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 jpeg_quality: int = 90, channel: Optional[grpc.aio.Channel] = None,
                 credentials: Optional[Credentials] = None) -> None:
        """credentials: a token and/or TLS (client/credentials.py); default: none (loopback, no auth)."""
        self.target = target
        self.jpeg_quality = jpeg_quality
        self.channel = channel or (credentials or Credentials()).channel(
            target, [("grpc.max_send_message_length", max_message_bytes),
                     ("grpc.max_receive_message_length", max_message_bytes)])
        self.stub = pb_grpc.VosServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> "VosClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ---- streaming ------------------------------------------------------------------------

    async def open_stream(self, stream_id: str, width: int, height: int, *,
                          format: Union[FrameFormat, str] = FrameFormat.JPEG,
                          mode: Union[StreamMode, str] = StreamMode.LIVE,
                          initial_prompts: Sequence[PromptLike] = ()) -> StreamCall:
        """Start a StreamFrames call and send its open message; read `Opened` (or the error) next."""
        fmt = FrameFormat(format)
        call = self.stub.StreamFrames(metadata=routing(stream_id))
        opening = pb.StreamOpen(stream_id=stream_id, width=width, height=height, format=format_to_proto(fmt),
                                mode=mode_to_proto(mode), initial_prompts=[_prompt_proto(p) for p in initial_prompts])
        await call.write(pb.StreamRequest(open=opening))
        return StreamCall(call, stream_id, fmt, self.jpeg_quality)

    async def stream(self, stream_id: str, frames: Union[AsyncIterable[FrameLike], Iterable[FrameLike]], *,
                     width: Optional[int] = None, height: Optional[int] = None,
                     format: Union[FrameFormat, str] = FrameFormat.JPEG,
                     mode: Union[StreamMode, str] = StreamMode.LIVE,
                     initial_prompts: Sequence[PromptLike] = (),
                     reconnect: Optional[Backoff] = None) -> AsyncIterator[StreamEvent]:
        """Send every frame, then half-close; yield every event until the server's Closed.

        Width and height default to the first frame's (it must then be an array).
        reconnect: when the call ends UNAVAILABLE or is reset by a proxy (its replica died or
        drained, the proxy restarted), yield Reconnecting, wait, and re-open the same stream id, going on with
        the next frames; the initial prompts are not sent again (a server with
        streams.resume_from_redis seeds the objects from Redis). Frames in flight at the
        failure get no result.
        """
        source = _aiter(frames)
        first: Optional[ClientFrame] = None
        if width is None or height is None:
            first = _as_frame(await source.__anext__())
            if not isinstance(first.data, np.ndarray):
                raise ValueError("give width and height when frames are encoded bytes")
            height, width = first.data.shape[:2]
        # One reader of the source for all calls: a reconnect never restarts or cancels it.
        pending: asyncio.Queue = asyncio.Queue(maxsize=1)

        async def read_source() -> None:
            if first is not None:
                await pending.put(first)
            async for item in source:
                await pending.put(_as_frame(item))
            await pending.put(None)

        reader = asyncio.create_task(read_source())
        prompts, attempt, reopened = initial_prompts, 0, False
        try:
            while True:
                sent: dict[int, None] = {}  # frames sent on this call and not answered yet, in order
                try:
                    async for event in self._one_call(stream_id, width, height, format, mode, prompts, pending, sent):
                        if isinstance(event, Result):
                            attempt = 0  # a working call: the next failure starts the backoff afresh
                        yield event
                    return
                except grpc.aio.AioRpcError as e:
                    # CANCELLED that this side did not ask for (that raises CancelledError): a proxy
                    # reset the call (HAProxy's RST_STREAM CANCEL when its server dies). ALREADY_EXISTS
                    # on a re-open: the old replica has not yet seen the old call end.
                    retry = _RETRYABLE | ({grpc.StatusCode.ALREADY_EXISTS} if reopened else set())
                    cut = e.code() in retry or (e.code() == grpc.StatusCode.INTERNAL and e.details() == _CORE_FAILURE)
                    if reconnect is None or not cut or attempt >= reconnect.max_attempts:
                        raise
                    failed = reader.exception() if reader.done() else None
                    if failed is not None:
                        raise failed from e
                    attempt += 1
                    delay = reconnect.delay(attempt, random.random())
                    yield Reconnecting(attempt, delay, e.details() or e.code().name, tuple(sent))
                    await asyncio.sleep(delay)
                    prompts, reopened = (), True
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _one_call(self, stream_id: str, width: int, height: int, format, mode, prompts,
                        pending: asyncio.Queue, sent: dict[int, None]) -> AsyncIterator[StreamEvent]:
        """One StreamFrames call fed from ``pending`` (None = the source is done: half-close).

        ``sent`` tracks the frames handed to this call that no result or drop answered yet."""
        call = await self.open_stream(stream_id, width, height, format=format, mode=mode, initial_prompts=prompts)

        async def pump() -> None:
            while (frame := await pending.get()) is not None:
                sent[frame.index] = None
                await call.send_frame(frame)
            await call.done_writing()

        sender = asyncio.create_task(pump())
        try:
            async for event in call:
                if isinstance(event, (Result, Dropped)):
                    sent.pop(event.frame_index, None)
                yield event
            failed = sender.exception() if sender.done() and not sender.cancelled() else None
            if failed is not None:
                raise failed
        finally:
            if not call.done():
                call.cancel()
            if not sender.done():
                sender.cancel()
            # A write after the server ended the call fails too; the call's status says why.
            await asyncio.gather(sender, return_exceptions=True)

    # ---- unary ---------------------------------------------------------------------------

    async def add_prompt(self, stream_id: str, obj_id: int, prompt: Optional[Prompt] = None, *,
                         points: Any = None, labels: Any = None, box: Any = None, mask: Any = None,
                         frame_index: Optional[int] = None, clear_previous: bool = True) -> list[Result]:
        """Add or correct an object; the prompted frame's result first, then revised later ones."""
        if prompt is None:
            if points is not None:
                labels = np.ones(len(points), np.int32) if labels is None else labels
                prompt = Prompt(points=np.asarray(points, np.float32).reshape(-1, 2),
                                labels=np.asarray(labels, np.int32).reshape(-1), box=box)
            else:
                prompt = Prompt(box=box, mask=mask)
        req = convert.add_prompt_request(stream_id, obj_id, prompt, frame_index, clear_previous)
        resp = await self.stub.AddPrompt(req, metadata=routing(stream_id))
        return [result_from_proto(r) for r in resp.results]

    async def remove_object(self, stream_id: str, obj_id: int) -> None:
        await self.stub.RemoveObject(pb.RemoveObjectRequest(stream_id=stream_id, obj_id=obj_id),
                                     metadata=routing(stream_id))

    async def list_streams(self) -> list[StreamInfo]:
        resp = await self.stub.ListStreams(pb.ListStreamsRequest())
        return [info_from_proto(i) for i in resp.streams]

    async def get_stream(self, stream_id: str) -> StreamInfo:
        return info_from_proto(await self.stub.GetStream(pb.GetStreamRequest(stream_id=stream_id),
                                                         metadata=routing(stream_id)))

    async def close_stream(self, stream_id: str) -> None:
        await self.stub.CloseStream(pb.CloseStreamRequest(stream_id=stream_id), metadata=routing(stream_id))

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the channel connects (raises asyncio.TimeoutError)."""
        await asyncio.wait_for(self.channel.channel_ready(), timeout)
