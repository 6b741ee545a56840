"""The worker loop: collect work -> run -> apply control messages -> emit.

One thread runs every model call of the service (torch already uses all cores
inside each op, and one thread keeps the event loop free). The image encoder
runs once for a batch of frames from different streams; each stream then
steps its own tracker. Prompts, removals and closes are applied at one fixed
point, between steps, never in the middle of one.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..engine.errors import EngineError
from .types import Control, DropNotice, FrameOutput, FrameTask, LimitExceededError, PromptSpec

if TYPE_CHECKING:
    from .manager import StreamManager
    from .session import StreamSession

log = logging.getLogger(__name__)


class Worker(threading.Thread):
    def __init__(self, manager: "StreamManager") -> None:
        super().__init__(name="vos-worker", daemon=True)
        self.m = manager
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.m.scheduler.notify()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                batch = self.m.scheduler.next_batch(idle_timeout=0.1)
                if batch:
                    self._run_batch(batch)
                self._apply_controls()
                self.m.reap_idle()
            except Exception:  # the loop must survive anything one stream does
                log.exception("worker loop iteration failed")

    # ---- run ------------------------------------------------------------------

    def _run_batch(self, batch: list[tuple["StreamSession", FrameTask]]) -> None:
        metrics = self.m.metrics
        started = time.monotonic()
        for _, task in batch:
            metrics.queue_wait.observe(started - task.received_at)
        metrics.encoder_batch.observe(len(batch))
        features = self.m.encoder.encode([task.rgb for _, task in batch])
        for (session, task), image in zip(batch, features):
            if session.closed:
                continue
            try:
                result = session.tracker.step(image, task.rgb.shape[0], task.rgb.shape[1])
                session.frame_done(result.frame_index, task)
                prompts = list(task.prompts)
                if session.initial_prompts_pending:
                    prompts = list(session.spec.initial_prompts) + prompts
                    session.initial_prompts_pending = False
                for p in prompts:  # inline prompts land on this very frame
                    result = self._prompt(session, PromptSpec(p.obj_id, p.prompt, None, p.clear_previous))[0].result
            except EngineError as e:  # a prompt the api could not pre-check: report it, skip the frame
                log.warning("stream %s frame %d: %s", session.stream_id, task.index, e)
                session.sink(DropNotice(session.stream_id, task.index, f"error: {e}"))
                continue
            self.m.emit(session, FrameOutput(session.stream_id, task.index, task.capture_ts, result,
                                             revised=False, received_at=task.received_at))
            metrics.frames_processed.inc()

    # ---- control ----------------------------------------------------------------

    def _apply_controls(self) -> None:
        for session in self.m.snapshot():
            for c in session.take_controls():
                self._apply(session, c)

    def _apply(self, session: "StreamSession", c: Control) -> None:
        try:
            if c.kind == "prompt":
                outputs = self._prompt(session, c.prompt)
                for o in outputs:
                    self.m.emit(session, o)
                c.done.set_result(outputs)
            elif c.kind == "remove":
                session.tracker.remove_object(c.obj_id)
                self.m.event("object_removed", session.stream_id, obj_id=c.obj_id)
                c.done.set_result(None)
            elif c.kind == "close":
                self.m.finalize_close(session, c.reason)
                c.done.set_result(None)
        except Exception as e:  # reported to whoever sent the control message
            if not c.done.done():
                c.done.set_exception(e)

    def _prompt(self, session: "StreamSession", p: PromptSpec) -> list[FrameOutput]:
        tracker = session.tracker
        is_new = p.obj_id not in tracker.objects
        if is_new and len(tracker.objects) >= self.m.settings.streams.max_objects:
            raise LimitExceededError(
                f"stream {session.stream_id!r} already tracks {len(tracker.objects)} objects (max_objects)")
        results = tracker.add_prompt(p.obj_id, p.prompt, session.engine_frame(p.frame_index), p.clear_previous)
        kind = "mask" if p.prompt.mask is not None else "box" if p.prompt.box is not None else "points"
        self.m.metrics.prompts.labels(kind).inc()
        outputs = []
        for r in results:
            client_index, ts = session.client_frame(r.frame_index)
            outputs.append(FrameOutput(session.stream_id, client_index, ts, r, revised=True))
        self.m.event("object_added" if is_new else "correction_applied", session.stream_id,
                     obj_id=p.obj_id, frame_index=outputs[0].frame_index,
                     detail={"kind": kind, "revised_frames": [o.frame_index for o in outputs]})
        return outputs
