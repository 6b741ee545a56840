"""Dataclasses between api/ and the runtime, and the runtime's domain errors."""

from __future__ import annotations

import enum
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional, Union

import numpy as np

from ..engine.errors import EngineError
from ..engine.types import FrameResult, Prompt
from ..io.rle import encode_mask


class StreamNotFoundError(EngineError, LookupError):
    """No open stream has this id (NOT_FOUND)."""


class StreamExistsError(EngineError, ValueError):
    """A stream with this id is already open (ALREADY_EXISTS)."""


class LimitExceededError(EngineError, RuntimeError):
    """Streams, objects, frame bytes or resolution over a configured limit (RESOURCE_EXHAUSTED)."""


class ShuttingDownError(EngineError, RuntimeError):
    """The service is draining and takes no new work (UNAVAILABLE)."""


class StreamMode(str, enum.Enum):
    LIVE = "live"  # a camera: when the queue is full the oldest waiting frame is dropped
    LOSSLESS = "lossless"  # a file: the producer waits (gRPC flow control), nothing is dropped


@dataclass(frozen=True)
class PromptSpec:
    """A prompt addressed to a stream: obj_id on `frame_index` (client numbering; None = latest)."""

    obj_id: int
    prompt: Prompt
    frame_index: Optional[int] = None
    clear_previous: bool = True


@dataclass(frozen=True)
class StreamSpec:
    stream_id: str
    width: int  # source size announced by the client; frames must match it
    height: int
    mode: StreamMode = StreamMode.LIVE
    initial_prompts: tuple[PromptSpec, ...] = ()  # applied on the first frame


@dataclass
class FrameTask:
    """A decoded frame waiting for the worker."""

    index: int  # the client's frame index
    rgb: np.ndarray  # (H, W, 3) uint8
    capture_ts: Optional[float] = None  # the client's capture time, seconds
    received_at: float = 0.0  # time.monotonic() when the api received it
    prompts: tuple[PromptSpec, ...] = ()  # inline prompts, applied on this frame


@dataclass(frozen=True)
class FrameOutput:
    """One frame's masklets, as first computed (revised=False) or revised by a correction."""

    stream_id: str
    frame_index: int  # the client's frame index
    capture_ts: Optional[float]
    result: FrameResult
    revised: bool = False
    received_at: float = 0.0

    @cached_property
    def rles(self) -> tuple[dict, ...]:
        """COCO RLE of each object's mask, encoded once for gRPC and Redis alike."""
        return tuple(encode_mask(o.mask) for o in self.result.objects)


@dataclass(frozen=True)
class DropNotice:
    stream_id: str
    frame_index: int
    reason: str  # queue_full


@dataclass(frozen=True)
class StreamClosed:
    stream_id: str
    reason: str  # client_closed | idle_timeout | closed_by_request | shutdown | error: ...


StreamEvent = Union[FrameOutput, DropNotice, StreamClosed]


@dataclass
class Control:
    """A control message, applied by the worker between steps; `done` gets the outcome."""

    kind: str  # prompt | remove | close
    prompt: Optional[PromptSpec] = None
    obj_id: Optional[int] = None
    reason: str = "closed_by_request"
    done: Future = field(default_factory=Future)


@dataclass(frozen=True)
class StreamInfo:
    stream_id: str
    mode: StreamMode
    width: int
    height: int
    objects: tuple[int, ...]
    fps: float  # processed frames per second (recent average)
    queue_depth: int
    received: int
    processed: int
    dropped: int
    last_frame_index: Optional[int]
