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
from ..io.rle import Rle, encode_mask


class StreamNotFoundError(EngineError, LookupError):
    """No open stream has this id (NOT_FOUND)."""


class StreamExistsError(EngineError, ValueError):
    """A stream with this id is already open (ALREADY_EXISTS)."""


class LimitExceededError(EngineError, RuntimeError):
    """Streams, objects, frame bytes or resolution over a configured limit (RESOURCE_EXHAUSTED)."""


class ShuttingDownError(EngineError, RuntimeError):
    """The service is draining and takes no new work (UNAVAILABLE)."""


class UnavailableError(EngineError, RuntimeError):
    """A dependency the request needs (Redis, to resume a stream) is unreachable: retry (UNAVAILABLE)."""


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
    owner: str = ""  # the identity that opened it (api.auth); "" when auth is off
    max_objects: Optional[int] = None  # the owner's quota; None = streams.max_objects


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
    revision: int = 0  # of the frame: 0 when first published, +1 each time it is published again

    @cached_property
    def rles(self) -> tuple[Rle, ...]:
        """COCO RLE of each object's mask, encoded once for gRPC and Redis alike."""
        return tuple(encode_mask(o.mask) for o in self.result.objects)


class DropReason(str, enum.Enum):
    """Why a frame got no result (the wire text is `<reason>` or `<reason>: <detail>`)."""

    QUEUE_FULL = "queue_full"  # live mode overload: the oldest waiting frame made room
    INVALID = "invalid"  # the api refused the frame or one of its inline prompts (nothing applied)
    REFUSED = "refused"  # the runtime refused the frame's prompts as a whole (a limit); nothing applied
    ERROR = "error"  # the engine failed on this frame (a service fault, logged)
    SHUTDOWN = "shutdown"  # arrived while the service drains
    RATE_LIMITED = "rate_limited"  # live stream over its owner's max_fps


@dataclass(frozen=True)
class DropNotice:
    stream_id: str
    frame_index: int  # -1 when the message had no frame
    reason: DropReason
    detail: str = ""

    @property
    def text(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


class CloseReason(str, enum.Enum):
    CLIENT_CLOSED = "client_closed"  # the client half-closed; every frame sent was answered
    CLIENT_DISCONNECTED = "client_disconnected"  # cancelled or the connection went away
    CLOSED_BY_REQUEST = "closed_by_request"  # CloseStream
    IDLE_TIMEOUT = "idle_timeout"
    SHUTDOWN = "shutdown"  # the service stops: reconnect (the call ends UNAVAILABLE)
    ERROR = "error"  # a fault ended the stream
    LEASE_LOST = "lease_lost"  # its Redis lease went to another replica (fleet): reconnect there


@dataclass(frozen=True)
class StreamClosed:
    stream_id: str
    reason: CloseReason
    detail: str = ""

    @property
    def text(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


StreamEvent = Union[FrameOutput, DropNotice, StreamClosed]


class StreamState(str, enum.Enum):
    """One stream's lifecycle; it only moves forward: OPEN -> DRAINING -> CLOSED (or OPEN -> CLOSED)."""

    OPEN = "open"  # takes frames and control messages
    DRAINING = "draining"  # the service shuts down: queued frames finish, new ones are refused
    CLOSED = "closed"  # gone from the manager: nothing is taken, emitted or published any more


@dataclass
class PromptControl:
    """Add or correct one object (AddPrompt); `done` gets the FrameOutputs it produced."""

    prompt: PromptSpec
    done: Future = field(default_factory=Future)


@dataclass
class RemoveControl:
    """Stop tracking one object (RemoveObject); `done` gets None."""

    obj_id: int
    done: Future = field(default_factory=Future)


# Control messages the worker applies between steps (closing a stream is immediate, not queued:
# see StreamManager.close).
Control = Union[PromptControl, RemoveControl]


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
    replica: str = ""  # the replica that holds the stream (set by the api; client side)
