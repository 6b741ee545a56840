"""What the client hands back: plain dataclasses decoded from the proto responses.

Masks stay COCO RLE until asked for (`Masklet.mask()`): a console that only
draws boxes, or forwards the RLE, never pays for decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from ..api.convert import FORMAT_TO_PROTO, MODE_TO_PROTO, MODES
from ..api.gen.vos.v1 import vos_pb2 as pb
from ..engine.types import Prompt
from ..io.decode import FrameFormat
from ..io.rle import Rle, decode_mask
from ..runtime.types import StreamInfo, StreamMode


@dataclass(frozen=True)
class Masklet:
    obj_id: int
    rle: Rle  # {"size": [h, w], "counts": str}
    score: float  # object score logit; > 0 means visible
    visible: bool
    iou: float
    box: Optional[tuple[int, int, int, int]]  # x0, y0, x1, y1 (exclusive); None if the mask is empty
    revision: int
    prompted: bool

    def mask(self) -> np.ndarray:
        """(H, W) bool at the source resolution."""
        return decode_mask(self.rle)


@dataclass(frozen=True)
class Result:
    stream_id: str
    frame_index: int
    capture_ts: Optional[float]
    revised: bool
    masklets: tuple[Masklet, ...]
    revision: int = 0  # of the frame: higher for every re-publication; keep the highest per frame

    def by_id(self) -> dict[int, Masklet]:
        return {m.obj_id: m for m in self.masklets}


@dataclass(frozen=True)
class Opened:
    stream_id: str


@dataclass(frozen=True)
class Dropped:
    frame_index: int  # -1 when the message had no frame
    reason: str  # queue_full | invalid: ... | refused: ... | error: ... | shutdown: ...


@dataclass(frozen=True)
class Closed:
    reason: str  # client_closed | closed_by_request | idle_timeout | shutdown | ...


@dataclass(frozen=True)
class Reconnecting:
    """The call ended UNAVAILABLE (replica died or drained, proxy restarted); the client re-opens
    the same stream id after ``delay_s`` (VosClient.stream with ``reconnect``)."""

    attempt: int  # 1 for the first retry after a working call
    delay_s: float
    reason: str
    unanswered: tuple[int, ...] = ()  # frames sent on the failed call that got no result (lost)


@dataclass(frozen=True)
class Backoff:
    """Reconnect policy: exponential backoff with full jitter, reset once a call delivers a result."""

    initial_s: float = 0.1
    max_s: float = 2.0
    multiplier: float = 2.0
    max_attempts: int = 30  # consecutive failed re-opens before the error is raised

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds before retry ``attempt`` (1-based); ``rand`` in [0, 1) spreads a fleet's cameras."""
        return min(self.max_s, self.initial_s * self.multiplier ** (attempt - 1)) * (0.5 + 0.5 * rand)


StreamEvent = Union[Opened, Result, Dropped, Closed, Reconnecting]
# (obj_id, prompt), (obj_id, prompt, clear_previous), or a ready proto
PromptLike = Union[tuple[int, Prompt], tuple[int, Prompt, bool], pb.Prompt]


@dataclass(frozen=True)
class ClientFrame:
    """One frame to send: an (H, W, 3) uint8 RGB array (encoded by the client) or encoded bytes."""

    index: int
    data: Union[np.ndarray, bytes]
    capture_ts: Optional[float] = None  # seconds; echoed back in the results
    prompts: Sequence[PromptLike] = field(default_factory=tuple)  # (obj_id, prompt[, clear]) on this frame


# ---- proto -> client types ------------------------------------------------------------


def masklet_from_proto(m: pb.Masklet) -> Masklet:
    box = (int(m.box.x0), int(m.box.y0), int(m.box.x1), int(m.box.y1)) if m.HasField("box") else None
    return Masklet(m.obj_id, {"size": [int(v) for v in m.mask.size], "counts": m.mask.counts}, m.score,
                   m.visible, m.iou, box, m.revision, m.prompted)


def result_from_proto(r: pb.FrameResult) -> Result:
    return Result(r.stream_id, r.frame_index, r.capture_ts if r.HasField("capture_ts") else None, r.revised,
                  tuple(masklet_from_proto(m) for m in r.masklets), r.revision)


def event_from_proto(msg: pb.StreamResponse) -> StreamEvent:
    kind = msg.WhichOneof("msg")
    if kind == "result":
        return result_from_proto(msg.result)
    if kind == "drop":
        return Dropped(msg.drop.frame_index, msg.drop.reason)
    if kind == "opened":
        return Opened(msg.opened.stream_id)
    if kind == "closed":
        return Closed(msg.closed.reason)
    raise ValueError(f"unknown response kind {kind!r}")  # a newer server; never silently skipped


def info_from_proto(i: pb.StreamInfo) -> StreamInfo:
    return StreamInfo(i.stream_id, MODES[i.mode], i.width, i.height, tuple(i.objects), i.fps, i.queue_depth,
                      i.received, i.processed, i.dropped,
                      i.last_frame_index if i.HasField("last_frame_index") else None, i.replica)


def format_to_proto(fmt: Union[FrameFormat, str]) -> pb.FrameFormat:
    return FORMAT_TO_PROTO[FrameFormat(fmt)]


def mode_to_proto(mode: Union[StreamMode, str]) -> pb.StreamMode:
    return MODE_TO_PROTO[StreamMode(mode)]
