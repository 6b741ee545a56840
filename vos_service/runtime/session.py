"""One open stream: its tracker, bounded ingest queue, control queue and counters.

Thread model: api/ (event loop thread) offers frames and control messages;
the worker thread takes them. One lock guards the queues; the tracker is
touched by the worker thread only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Callable, Optional

from ..engine.errors import FrameNotAvailableError
from ..engine.tracker import StreamTracker
from .types import (Control, DropNotice, DropReason, FrameOutput, FrameTask, ShuttingDownError, StreamEvent,
                    StreamInfo, StreamMode, StreamNotFoundError, StreamSpec, StreamState)

Sink = Callable[[StreamEvent], None]


class StreamSession:
    def __init__(self, spec: StreamSpec, tracker: StreamTracker, queue_size: int, sink: Sink,
                 on_frame: Callable[[], None] = lambda: None) -> None:
        self.spec = spec
        self.tracker = tracker
        self.queue_size = queue_size
        self.sink = sink
        self._on_frame = on_frame  # wakes the scheduler
        self._lock = threading.Lock()
        self._frames: deque[FrameTask] = deque()
        self._control: deque[Control] = deque()
        self._space_waiters: list[Future] = []
        # engine frame index -> (client index, capture ts), for frames still in the feature ring
        self._index_map: dict[int, tuple[int, Optional[float]]] = {}
        # engine frame index -> the revision it was last published with (same frames as _index_map)
        self._revisions: dict[int, int] = {}
        self.received = self.processed = self.dropped = 0
        self.last_activity = time.monotonic()
        self.last_frame_index: Optional[int] = None
        self._fps = 0.0
        self._last_done: Optional[float] = None
        self.state = StreamState.OPEN
        self.last_drop: Optional[str] = None  # the latest drop reason, for operators (console)
        self._max_objects = tracker.config.max_objects
        self.initial_prompts_pending = bool(spec.initial_prompts)

    @property
    def stream_id(self) -> str:
        return self.spec.stream_id

    @property
    def max_objects(self) -> int:
        return self._max_objects

    @property
    def owner(self) -> str:
        return self.spec.owner

    @property
    def closed(self) -> bool:
        return self.state is StreamState.CLOSED

    # ---- lifecycle (any thread) --------------------------------------------

    def drain(self) -> None:
        """The service shuts down: take no new frames; those queued still run."""
        with self._lock:
            if self.state is StreamState.OPEN:
                self.state = StreamState.DRAINING

    def mark_closed(self) -> bool:
        """Move to CLOSED; False if it already was (exactly one caller wins)."""
        with self._lock:
            if self.state is StreamState.CLOSED:
                return False
            self.state = StreamState.CLOSED
            return True

    def deliver(self, event: StreamEvent, publish: Callable[[], None] = lambda: None) -> bool:
        """Hand `event` to the sink and run `publish`, unless the stream is closed (then neither).

        Under the lock that mark_closed takes, so nothing of a closed stream goes out after
        its `closed` event (a re-opened stream of the same id may already be publishing).
        """
        with self._lock:
            if self.state is StreamState.CLOSED:
                return False
            self.sink(event)
            publish()
        if isinstance(event, DropNotice):
            self.last_drop = event.text
        return True

    # ---- producer side (api) -----------------------------------------------

    def offer(self, task: FrameTask) -> Optional[Future]:
        """Enqueue a frame. Returns None when taken; in lossless mode, when the queue is
        full, returns a Future that completes once there is room (offer again then)."""
        dropped = None
        with self._lock:
            if self.state is not StreamState.OPEN:
                raise ShuttingDownError(f"stream {self.stream_id!r} takes no more frames")
            self.last_activity = time.monotonic()
            if len(self._frames) >= self.queue_size:
                if self.spec.mode is StreamMode.LOSSLESS:
                    fut: Future = Future()
                    self._space_waiters.append(fut)
                    return fut
                dropped = self._frames.popleft()  # live: the oldest waiting frame, never the one in flight
                self.dropped += 1
            self._frames.append(task)
            self.received += 1
        if dropped is not None:
            self.deliver(DropNotice(self.stream_id, dropped.index, DropReason.QUEUE_FULL))
        self._on_frame()
        return None

    def control(self, msg: Control) -> Future:
        with self._lock:
            if self.state is StreamState.CLOSED:  # the worker will never look at this session again
                msg.done.set_exception(StreamNotFoundError(f"stream {self.stream_id!r} is closed"))
                return msg.done
            self._control.append(msg)
        self._on_frame()
        return msg.done

    # ---- consumer side (worker) --------------------------------------------

    def has_frame(self) -> bool:
        return bool(self._frames)

    def has_control(self) -> bool:
        return bool(self._control)

    @property
    def queue_depth(self) -> int:
        return len(self._frames)

    def take_frame(self) -> Optional[FrameTask]:
        with self._lock:
            task = self._frames.popleft() if self._frames else None
            waiters, self._space_waiters = self._space_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)
        return task

    def take_controls(self) -> list[Control]:
        with self._lock:
            out = list(self._control)
            self._control.clear()
        return out

    def frame_done(self, engine_index: int, task: FrameTask) -> None:
        """Book-keeping after the tracker stepped over `task` as frame `engine_index`."""
        self._index_map[engine_index] = (task.index, task.capture_ts)
        self._index_map.pop(engine_index - self.tracker.ring.capacity, None)
        self._revisions.pop(engine_index - self.tracker.ring.capacity, None)
        self.processed += 1
        self.last_frame_index = task.index
        now = time.monotonic()
        if self._last_done is not None:
            dt = max(now - self._last_done, 1e-6)
            self._fps = 0.9 * self._fps + 0.1 / dt if self._fps else 1.0 / dt
        self._last_done = now

    def output(self, engine_index: int, result, *, revised: bool, received_at: float = 0.0) -> FrameOutput:
        """The FrameOutput that publishes `result`, with the frame's next revision.

        Every publication of a frame carries a higher revision than the one before (an
        object added on the latest frame re-publishes it too), so a reader that keeps the
        highest revision per frame always keeps the newest entry. Worker thread only.
        """
        rev = self._revisions.get(engine_index, -1) + 1
        self._revisions[engine_index] = rev
        client_index, ts = self.client_frame(engine_index)
        return FrameOutput(self.stream_id, client_index, ts, result, revised=revised, received_at=received_at,
                           revision=rev)

    def client_frame(self, engine_index: int) -> tuple[int, Optional[float]]:
        return self._index_map.get(engine_index, (engine_index, None))

    def engine_frame(self, client_index: Optional[int]) -> Optional[int]:
        """Client frame index -> engine frame index (None = latest); None if not cached."""
        if client_index is None:
            return None
        for e, (c, _) in self._index_map.items():
            if c == client_index:
                return e
        cached = sorted(c for c, _ in self._index_map.values())
        raise FrameNotAvailableError(
            f"frame {client_index} is not among the cached frames of stream {self.stream_id!r}: {cached}")

    def close_waiters(self) -> None:
        with self._lock:
            waiters, self._space_waiters = self._space_waiters, []
            pending = list(self._control)
            self._control.clear()
            self._frames.clear()
        for w in waiters:
            if not w.done():
                w.set_result(None)
        for c in pending:
            if not c.done.done():
                c.done.set_exception(StreamNotFoundError(f"stream {self.stream_id!r} was closed"))

    def info(self) -> StreamInfo:
        objects = tuple(sorted(list(self.tracker.objects)))  # copy first: the worker may mutate it
        return StreamInfo(self.stream_id, self.spec.mode, self.spec.width, self.spec.height, objects, round(self._fps, 2), self.queue_depth,
                          self.received, self.processed, self.dropped, self.last_frame_index)
