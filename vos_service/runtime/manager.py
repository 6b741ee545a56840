"""Stream lifecycle: open, look up, close, idle reaping, graceful shutdown."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional, Protocol

import numpy as np

from ..config import Settings
from ..engine.encoder import ImageEncoder
from ..engine.model import LoadedModel
from ..engine.tracker import StreamTracker, TrackerConfig
from ..engine.types import Stage
from ..metrics import Metrics
from ..publish.schema import MaskletMessage
from .heap import release_free_memory
from .scheduler import Scheduler
from .session import Sink, StreamSession
from .types import (CloseReason, FrameOutput, LimitExceededError, ShuttingDownError, StreamClosed,
                    StreamExistsError, StreamInfo, StreamNotFoundError, StreamSpec)
from .worker import Worker

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where results and lifecycle events go besides the gRPC stream (Redis in production)."""

    def masklets(self, output: FrameOutput) -> None: ...
    def event(self, type: str, stream_id: str, **fields: Any) -> None: ...
    def stream_opened(self, stream_id: str) -> None: ...
    def stream_closed(self, stream_id: str) -> None: ...
    def recent_masklets(self, stream_id: str, count: int) -> list[MaskletMessage]: ...
    def close(self, timeout: float = 1.0) -> None: ...


# An observer of every result a stream emits, e.g. the console. Called on the worker thread with
# the frame's pixels when it was just segmented (None for a revision): it must only hand the
# work over (a queue, an executor), never block the worker.
FrameTap = Callable[[StreamSession, FrameOutput, Optional[np.ndarray]], None]


class NullPublisher:
    def masklets(self, output: FrameOutput) -> None:
        pass

    def event(self, type: str, stream_id: str, **fields: Any) -> None:
        pass

    def stream_opened(self, stream_id: str) -> None:
        pass

    def stream_closed(self, stream_id: str) -> None:
        pass

    def recent_masklets(self, stream_id: str, count: int) -> list[MaskletMessage]:
        return []

    def close(self, timeout: float = 1.0) -> None:
        pass


class StreamManager:
    def __init__(self, model: LoadedModel, settings: Settings, metrics: Metrics,
                 publisher: Optional[Publisher] = None) -> None:
        self.model = model
        self.leases = None  # fleet.lease.StreamLeases when streams.lease_ttl_s > 0 (set by the service)
        self.settings = settings
        self.metrics = metrics
        self.publisher = publisher or NullPublisher()
        self.encoder = ImageEncoder(model, timer=metrics.stage)  # shared: frames batch across streams
        self._sessions: dict[str, StreamSession] = {}
        self._retired: list[StreamSession] = []
        self._taps: list[FrameTap] = []  # closed, their trackers not freed yet (worker does it)
        self._lock = threading.Lock()
        self.accepting = True
        self._gauges()
        sched = settings.scheduler
        self.scheduler = Scheduler(self.snapshot, sched.max_batch, sched.max_wait_ms / 1000, sched.batching)
        self.worker = Worker(self)

    def start(self) -> None:
        self.worker.start()

    # ---- lifecycle ------------------------------------------------------------

    def open(self, spec: StreamSpec, sink: Sink, owner_max_streams: Optional[int] = None) -> StreamSession:
        """A new stream; over max_streams, or over its owner's own quota, RESOURCE_EXHAUSTED."""
        limits = self.settings.streams
        if not self.accepting:
            raise ShuttingDownError("the service is shutting down")
        if spec.width > limits.max_width or spec.height > limits.max_height:
            raise LimitExceededError(
                f"{spec.width}x{spec.height} exceeds the limit {limits.max_width}x{limits.max_height}")
        tracker = StreamTracker(self.model, TrackerConfig(feature_ring=limits.feature_ring,
                                                          max_objects=min(limits.max_objects, spec.max_objects or limits.max_objects),
                                                          memory=limits.memory_config()),
                                encoder=self.encoder, timer=self.metrics.stage)
        session = StreamSession(spec, tracker, limits.queue_size, sink, on_frame=self.scheduler.notify)
        with self._lock:
            if spec.stream_id in self._sessions:
                raise StreamExistsError(f"stream {spec.stream_id!r} is already open")
            if len(self._sessions) >= limits.max_streams:
                raise LimitExceededError(f"{len(self._sessions)} streams open (max_streams)")
            owned = sum(s.owner == spec.owner for s in self._sessions.values())
            if owner_max_streams is not None and owned >= owner_max_streams:
                raise LimitExceededError(f"{spec.owner!r} has {owned} streams open, its quota (max_streams)")
            self._sessions[spec.stream_id] = session
        self.publisher.stream_opened(spec.stream_id)  # before its first masklet, in the same FIFO
        self.event("stream_opened", spec.stream_id, detail={"mode": spec.mode.value,
                                                            "width": spec.width, "height": spec.height})
        return session

    def get(self, stream_id: str) -> StreamSession:
        with self._lock:
            s = self._sessions.get(stream_id)
        if s is None:
            raise StreamNotFoundError(f"no open stream {stream_id!r}")
        return s

    def is_open(self, stream_id: str) -> bool:
        with self._lock:
            return stream_id in self._sessions

    def snapshot(self) -> list[StreamSession]:
        with self._lock:
            return list(self._sessions.values())

    def list(self) -> list[StreamInfo]:
        return [s.info() for s in self.snapshot()]

    def close(self, session: StreamSession, reason: CloseReason, detail: str = "") -> bool:
        """Close `session` now, from any thread; False if it was already closed.

        Immediate, not a queued control message: the id is free for a reconnecting client at
        once (a camera that re-opens right after a cancel must get in), pending controls fail,
        queued frames are discarded, and nothing of this session is emitted or published any
        more (StreamSession.deliver). The tracker is worker-owned: the worker frees it at its
        next fixed point (free_retired), never in the middle of a step.
        """
        if not session.mark_closed():
            return False
        with self._lock:
            if self._sessions.get(session.stream_id) is session:
                del self._sessions[session.stream_id]
            self._retired.append(session)
        session.close_waiters()
        session.sink(StreamClosed(session.stream_id, reason, detail))
        self.event("stream_closed", session.stream_id, detail={"reason": reason.value, "detail": detail})
        if reason is not CloseReason.LEASE_LOST:  # else the key is the new owner's: no expiry on it
            self.publisher.stream_closed(session.stream_id)
        if self.leases is not None and reason is not CloseReason.LEASE_LOST:
            self.leases.release(session.stream_id)
        self.scheduler.notify()  # the worker frees the tracker soon even when idle
        return True

    def lease_lost(self, stream_id: str) -> None:
        """Another replica owns the stream now (fleet.lease): stop serving and publishing it here."""
        with self._lock:
            session = self._sessions.get(stream_id)
        if session is not None:
            self.close(session, CloseReason.LEASE_LOST, "its Redis lease expired or was taken by another replica")

    def free_retired(self) -> None:
        """Worker thread, between steps: free the trackers of closed streams."""
        with self._lock:
            retired, self._retired = self._retired, []
        for s in retired:
            s.tracker.reset()  # features and memories now, not at garbage collection
        if retired:
            release_free_memory()

    def reap_idle(self) -> None:
        timeout = self.settings.streams.idle_timeout_s
        now = time.monotonic()
        for s in self.snapshot():
            if now - s.last_activity > timeout and not s.has_frame():
                log.info("closing idle stream %s", s.stream_id)
                self.close(s, CloseReason.IDLE_TIMEOUT)

    def shutdown(self, drain_timeout: float) -> None:
        """Stop taking work, finish queued frames (up to drain_timeout), close every stream."""
        self.accepting = False
        for s in self.snapshot():
            s.drain()
        deadline = time.monotonic() + drain_timeout
        while any(s.has_frame() for s in self.snapshot()) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.worker.stop()
        self.worker.join(timeout=max(1.0, deadline - time.monotonic()))
        for s in self.snapshot():
            self.close(s, CloseReason.SHUTDOWN)
        self.free_retired()  # the worker has stopped: free what it did not
        if self.leases is not None:
            self.leases.close()  # released, not left to expire: the cameras' reconnects get in at once
        self.publisher.close(timeout=1.0)

    # ---- output ---------------------------------------------------------------

    def add_tap(self, tap: FrameTap) -> None:
        self._taps.append(tap)

    def emit(self, session: StreamSession, output: FrameOutput, rgb: Optional[np.ndarray] = None) -> None:
        """Worker thread: the result goes to the stream's call, to Redis and to the taps (unless it closed)."""
        output.rles  # RLE-encode here, once for gRPC, Redis and the console, never on the event loop
        with self.metrics.stage(Stage.PUBLISH):
            if not session.deliver(output, lambda: self.publisher.masklets(output)):
                return
        for tap in self._taps:
            try:
                tap(session, output, rgb)
            except Exception:  # an observer's fault never costs a stream its results
                log.exception("frame tap failed")
        if not output.revised and output.received_at:
            self.metrics.frame_latency.observe(time.monotonic() - output.received_at)
        if self.metrics.stream_frames is not None and not output.revised:
            self.metrics.stream_frames.labels(session.stream_id).inc()

    def event(self, type: str, stream_id: str, **fields: Any) -> None:
        self.publisher.event(type, stream_id, **fields)

    def _gauges(self) -> None:
        """The live gauges read the sessions when Prometheus scrapes (no hand-kept copies)."""
        m = self.metrics
        m.active_streams.set_function(lambda: len(self._sessions))
        m.tracked_objects.set_function(lambda: sum(len(s.tracker.objects) for s in self.snapshot()))
        m.queue_depth.set_function(lambda: sum(s.queue_depth for s in self.snapshot()))
