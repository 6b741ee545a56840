"""Which frames the worker runs next: a fair, batched pick across streams.

Round-robin over streams with a waiting frame, at most one frame per stream
per batch (a stream's frames must be stepped in order), at most max_batch
frames; when fewer streams are ready than max_batch, wait up to max_wait for
more to become ready so the image encoder runs once for several streams.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from .session import StreamSession
from .types import FrameTask


class Scheduler:
    def __init__(self, sessions: Callable[[], list[StreamSession]], max_batch: int, max_wait_s: float,
                 batching: bool = True) -> None:
        self._sessions = sessions
        self.max_batch = max_batch if batching else 1
        self.max_wait_s = max_wait_s if batching else 0.0
        self._wake = threading.Condition()
        self._cursor = 0  # round-robin start, so no stream starves

    def notify(self) -> None:
        """A frame or control message arrived somewhere."""
        with self._wake:
            self._wake.notify_all()

    def wait(self, timeout: float) -> None:
        with self._wake:
            self._wake.wait(timeout)

    def next_batch(self, idle_timeout: float) -> list[tuple[StreamSession, FrameTask]]:
        """Up to max_batch (session, frame) pairs from distinct streams; [] after idle_timeout."""
        deadline = time.monotonic() + idle_timeout
        while not self._ready():
            left = deadline - time.monotonic()
            if left <= 0 or self._controls_waiting():  # a control must not wait for frames
                return []
            with self._wake:  # re-checked under the lock notify() takes: a wake-up is never lost
                if not self._ready() and not self._controls_waiting():
                    self._wake.wait(min(left, 0.05))
        if self.max_wait_s > 0 and len(self._ready()) < min(self.max_batch, len(self._sessions())):
            fill_deadline = time.monotonic() + self.max_wait_s
            while len(self._ready()) < self.max_batch and time.monotonic() < fill_deadline:
                self.wait(fill_deadline - time.monotonic())
        ready = self._ready()
        n = len(ready)
        start = self._cursor % n
        picked = [ready[(start + i) % n] for i in range(min(n, self.max_batch))]
        self._cursor = start + len(picked)
        batch = []
        for s in picked:
            task = s.take_frame()
            if task is not None:
                batch.append((s, task))
        return batch

    def _controls_waiting(self) -> bool:
        return any(s.has_control() for s in self._sessions())

    def _ready(self) -> list[StreamSession]:
        return [s for s in self._sessions() if s.has_frame() and not s.closed]
