"""The worker loop: collect work -> run -> apply control messages -> emit.

One thread runs every model call of the service (torch already uses all cores
inside each op, and one thread keeps the event loop free). The image encoder
runs once for a batch of frames from different streams; each stream then
steps its own tracker. Prompts and removals are applied at one fixed point,
between steps, never in the middle of one; so is the freeing of closed
streams' trackers (the close itself is immediate: StreamManager.close).
A frame's prompts apply all or nothing: they are checked against the limits
before the frame is stepped, and a refused frame is not stepped at all.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Optional

from ..engine.errors import EngineError
from ..engine.types import FrameResult
from .types import (Control, DropNotice, DropReason, FrameTask, LimitExceededError, PromptControl,
                    PromptSpec, RemoveControl)

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
                self.m.free_retired()
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
            prompts = self._frame_prompts(session, task)
            refusal = self._refusal(session, prompts)
            if refusal is not None:  # all or nothing: the frame is not stepped, no prompt applied
                session.deliver(DropNotice(session.stream_id, task.index, DropReason.REFUSED, refusal))
                continue
            try:
                result = session.tracker.step(image, task.rgb.shape[0], task.rgb.shape[1])
                session.frame_done(result.frame_index, task)
                result = self._apply_frame_prompts(session, prompts) or result
            except EngineError as e:  # a fault the checks above did not foresee: logged, frame skipped
                log.warning("stream %s frame %d: %s", session.stream_id, task.index, e)
                session.deliver(DropNotice(session.stream_id, task.index, DropReason.ERROR, str(e)))
                continue
            if session.initial_prompts_pending and prompts:
                session.initial_prompts_pending = False
            self.m.emit(session, session.output(result.frame_index, result, revised=False,
                                                received_at=task.received_at), rgb=task.rgb)
            metrics.frames_processed.inc()

    @staticmethod
    def _frame_prompts(session: "StreamSession", task: FrameTask) -> list[PromptSpec]:
        """The prompts that land on this frame: the stream's initial ones (first frame), then inline."""
        inline = list(task.prompts)
        if not session.initial_prompts_pending:
            return inline
        inline_ids = {p.obj_id for p in inline}  # an inline prompt replaces an initial one of its object
        return [p for p in session.spec.initial_prompts if p.obj_id not in inline_ids] + inline

    def _refusal(self, session: "StreamSession", prompts: list[PromptSpec]) -> Optional[str]:
        """Why the frame's prompts cannot all be applied (None: they can)."""
        limit = session.max_objects
        tracked = session.tracker.objects
        new = {p.obj_id for p in prompts} - set(tracked)
        if len(tracked) + len(new) > limit:
            return (f"{len(new)} new objects on a stream tracking {len(tracked)} would exceed "
                    f"max_objects={limit}; none of this frame's prompts was applied")
        return None

    def _apply_frame_prompts(self, session: "StreamSession", prompts: list[PromptSpec]) -> Optional[FrameResult]:
        """Inline prompts on the frame just stepped; new objects are removed again if one fails."""
        added: list[int] = []
        result = None
        try:
            for p in prompts:
                if p.obj_id not in session.tracker.objects:
                    added.append(p.obj_id)
                result = self._prompt(session, PromptSpec(p.obj_id, p.prompt, None, p.clear_previous))[0]
        except Exception:
            for obj_id in added:
                if obj_id in session.tracker.objects:
                    session.tracker.remove_object(obj_id)
            raise
        return result

    # ---- control ----------------------------------------------------------------

    def _apply_controls(self) -> None:
        for session in self.m.snapshot():
            for c in session.take_controls():
                self._apply(session, c)

    def _apply(self, session: "StreamSession", c: Control) -> None:
        try:
            if isinstance(c, PromptControl):
                results = self._prompt(session, c.prompt)
                outputs = [session.output(r.frame_index, r, revised=True) for r in results]
                for o in outputs:
                    self.m.emit(session, o)
                c.done.set_result(outputs)
            elif isinstance(c, RemoveControl):
                session.tracker.remove_object(c.obj_id)
                self.m.event("object_removed", session.stream_id, obj_id=c.obj_id)
                c.done.set_result(None)
        except Exception as e:  # reported to whoever sent the control message
            if not c.done.done():
                c.done.set_exception(e)

    def _prompt(self, session: "StreamSession", p: PromptSpec) -> list[FrameResult]:
        """Apply one prompt; the tracker's results: the prompted frame, then re-propagated later ones."""
        tracker = session.tracker
        is_new = p.obj_id not in tracker.objects
        if is_new and len(tracker.objects) >= session.max_objects:
            raise LimitExceededError(f"stream {session.stream_id!r} already tracks {len(tracker.objects)} objects "
                                     f"(max_objects={session.max_objects})")
        results = tracker.add_prompt(p.obj_id, p.prompt, session.engine_frame(p.frame_index), p.clear_previous)
        kind = "mask" if p.prompt.mask is not None else "box" if p.prompt.box is not None else "points"
        self.m.metrics.prompts.labels(kind).inc()
        frames = [session.client_frame(r.frame_index)[0] for r in results]
        # The event is the object's prompt journal on vos:events (its latest mask is the stream's
        # newest masklet): clicks and boxes in full (at most streams.max_points), masks by reference.
        journal = {k: v.tolist() for k, v in (("points", p.prompt.points), ("labels", p.prompt.labels))
                   if v is not None}
        if p.prompt.box is not None:
            journal["box"] = [float(v) for v in p.prompt.box]
        self.m.event("object_added" if is_new else "correction_applied", session.stream_id,
                     obj_id=p.obj_id, frame_index=frames[0],
                     detail={"kind": kind, "revised_frames": frames, "clear_previous": p.clear_previous, **journal})
        return results
