"""Stream lifecycle: open, look up, close, idle reaping, graceful shutdown."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any, Optional, Protocol

from ..config import Settings
from ..engine.encoder import ImageEncoder
from ..engine.model import LoadedModel
from ..engine.tracker import StreamTracker, TrackerConfig
from ..metrics import Metrics
from .scheduler import Scheduler
from .session import Sink, StreamSession
from .types import (Control, FrameOutput, LimitExceededError, ShuttingDownError, StreamClosed,
                    StreamExistsError, StreamInfo, StreamNotFoundError, StreamSpec)
from .worker import Worker

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where results and lifecycle events go besides the gRPC stream (Redis in production)."""

    def masklets(self, output: FrameOutput) -> None: ...
    def event(self, type: str, stream_id: str, **fields: Any) -> None: ...
    def close(self, timeout: float = 1.0) -> None: ...


class NullPublisher:
    def masklets(self, output: FrameOutput) -> None:
        pass

    def event(self, type: str, stream_id: str, **fields: Any) -> None:
        pass

    def close(self, timeout: float = 1.0) -> None:
        pass


class StreamManager:
    def __init__(self, model: LoadedModel, settings: Settings, metrics: Metrics,
                 publisher: Optional[Publisher] = None) -> None:
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.publisher = publisher or NullPublisher()
        self.encoder = ImageEncoder(model, timer=metrics.stage)  # shared: frames batch across streams
        self._sessions: dict[str, StreamSession] = {}
        self._lock = threading.Lock()
        self.accepting = True
        sched = settings.scheduler
        self.scheduler = Scheduler(self.snapshot, sched.max_batch, sched.max_wait_ms / 1000, sched.batching)
        self.worker = Worker(self)

    def start(self) -> None:
        self.worker.start()

    # ---- lifecycle ------------------------------------------------------------

    def open(self, spec: StreamSpec, sink: Sink) -> StreamSession:
        limits = self.settings.streams
        if not self.accepting:
            raise ShuttingDownError("the service is shutting down")
        if spec.width > limits.max_width or spec.height > limits.max_height:
            raise LimitExceededError(
                f"{spec.width}x{spec.height} exceeds the limit {limits.max_width}x{limits.max_height}")
        tracker = StreamTracker(self.model, TrackerConfig(feature_ring=limits.feature_ring,
                                                          max_objects=limits.max_objects,
                                                          memory=limits.memory_config()),
                                encoder=self.encoder, timer=self.metrics.stage)
        session = StreamSession(spec, tracker, limits.queue_size, sink, on_frame=self.scheduler.notify)
        with self._lock:
            if spec.stream_id in self._sessions:
                raise StreamExistsError(f"stream {spec.stream_id!r} is already open")
            if len(self._sessions) >= limits.max_streams:
                raise LimitExceededError(f"{len(self._sessions)} streams open (max_streams)")
            self._sessions[spec.stream_id] = session
        self.metrics.active_streams.set(len(self._sessions))
        self.event("stream_opened", spec.stream_id, detail={"mode": spec.mode.value,
                                                            "width": spec.width, "height": spec.height})
        return session

    def get(self, stream_id: str) -> StreamSession:
        with self._lock:
            s = self._sessions.get(stream_id)
        if s is None:
            raise StreamNotFoundError(f"no open stream {stream_id!r}")
        return s

    def snapshot(self) -> list[StreamSession]:
        with self._lock:
            return list(self._sessions.values())

    def list(self) -> list[StreamInfo]:
        return [s.info() for s in self.snapshot()]

    def close(self, stream_id: str, reason: str = "closed_by_request") -> Future:
        """Ask the worker to close the stream at its next fixed point."""
        return self.get(stream_id).control(Control("close", reason=reason))

    def finalize_close(self, session: StreamSession, reason: str) -> None:
        """Worker thread (or shutdown): free the stream now."""
        with self._lock:
            if self._sessions.get(session.stream_id) is not session:
                return
            del self._sessions[session.stream_id]
        session.closed = True
        session.close_waiters()
        session.tracker.reset()  # free features and memories now, not at garbage collection
        self.metrics.active_streams.set(len(self._sessions))
        self._update_gauges()
        session.sink(StreamClosed(session.stream_id, reason))
        self.event("stream_closed", session.stream_id, detail={"reason": reason})

    def reap_idle(self) -> None:
        timeout = self.settings.streams.idle_timeout_s
        now = time.monotonic()
        for s in self.snapshot():
            if now - s.last_activity > timeout and not s.has_frame():
                log.info("closing idle stream %s", s.stream_id)
                self.finalize_close(s, "idle_timeout")
        self._update_gauges()

    def shutdown(self, drain_timeout: float) -> None:
        """Stop taking work, finish queued frames (up to drain_timeout), close every stream."""
        self.accepting = False
        for s in self.snapshot():
            s.accepting = False
        deadline = time.monotonic() + drain_timeout
        while any(s.has_frame() for s in self.snapshot()) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.worker.stop()
        self.worker.join(timeout=max(1.0, deadline - time.monotonic()))
        for s in self.snapshot():
            self.finalize_close(s, "shutdown")
        self.publisher.close(timeout=1.0)

    # ---- output ---------------------------------------------------------------

    def emit(self, session: StreamSession, output: FrameOutput) -> None:
        session.sink(output)
        with self.metrics.stage("publish"):
            self.publisher.masklets(output)
        if not output.revised and output.received_at:
            self.metrics.frame_latency.observe(time.monotonic() - output.received_at)
        if self.metrics.stream_frames is not None and not output.revised:
            self.metrics.stream_frames.labels(session.stream_id).inc()

    def event(self, type: str, stream_id: str, **fields: Any) -> None:
        self.publisher.event(type, stream_id, **fields)

    def _update_gauges(self) -> None:
        sessions = self.snapshot()
        self.metrics.tracked_objects.set(sum(len(s.tracker.objects) for s in sessions))
        self.metrics.queue_depth.set(sum(s.queue_depth for s in sessions))
