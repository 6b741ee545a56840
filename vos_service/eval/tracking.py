"""Score a model as a tracker on synthetic clips with ground truth.

Protocol (the DAVIS semi-supervised one, with a click instead of a mask): every
object gets one positive click on frame 0 at the point of its mask farthest from
the boundary (SAM's "center" click), then the tracker runs over the whole clip
with no further help. Scores are J and F over frames 1..T-2, averaged over objects.

``repeat_first_frame`` is the baseline any tracker must beat: the frame-0 ground
truth copied onto every frame. ``correction_gain`` measures whether one
corrective click after a failure sticks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vos_service.engine.model import LoadedModel
from vos_service.engine.tracker import StreamTracker, TrackerConfig
from vos_service.engine.types import FrameResult, Prompt
from vos_service.eval.metrics import region_j
from vos_service.eval.scores import Report, SequenceScore, evaluate_sequence, summarize
from vos_service.synth import Clip

__all__ = ["CorrectionOutcome", "HeldOutProtocol", "center_click", "correction_gain", "corrective_click", "id_map",
           "repeat_first_frame", "score_clips", "track_one_click"]


def center_click(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel of ``mask`` farthest from its boundary (pixel centres)."""
    if not mask.any():
        raise ValueError("cannot click on an empty mask")
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x) + 0.5, float(y) + 0.5


def corrective_click(pred: np.ndarray, gt: np.ndarray) -> Prompt:
    """One click where the error is largest: positive in a missed region, negative in a false one."""
    missed, extra = gt & ~pred, pred & ~gt
    if not missed.any() and not extra.any():
        raise ValueError("nothing to correct")
    d_missed = cv2.distanceTransform(np.pad(missed.astype(np.uint8), 1), cv2.DIST_L2, 5).max()
    d_extra = cv2.distanceTransform(np.pad(extra.astype(np.uint8), 1), cv2.DIST_L2, 5).max()
    positive = d_missed >= d_extra
    x, y = center_click(missed if positive else extra)
    return Prompt.from_points([[x, y]], [1 if positive else 0])


def id_map(result: FrameResult, shape: tuple[int, int]) -> np.ndarray:
    """Object masks -> one id map; where masks overlap the higher object score wins."""
    out = np.zeros(shape, np.uint8)
    for o in sorted(result.objects, key=lambda o: o.score):
        if o.visible:
            out[o.mask] = o.obj_id
    return out


def track_one_click(model: LoadedModel, clip: Clip, config: TrackerConfig = TrackerConfig(),
                    correct: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Id maps for every frame of ``clip`` from one center click per object on frame 0.

    correct: (object id, frame) to give that object one corrective click on that frame,
    placed from the ground truth where its error is largest (as an operator would).
    """
    tracker = StreamTracker(model, config)
    shape = clip.masks[0].shape
    preds = []
    for t, frame in enumerate(clip.frames):
        result = tracker.track(frame)
        if t == 0:
            for oid in clip.object_ids:
                x, y = center_click(clip.masks[0] == oid)
                result = tracker.add_prompt(oid, Prompt.from_points([[x, y]], [1]))[0]
        if correct is not None and t == correct[1]:
            oid = correct[0]
            click = corrective_click(result.by_id()[oid].mask, clip.masks[t] == oid)
            result = tracker.add_prompt(oid, click)[0]
        preds.append(id_map(result, shape))
    return preds


def repeat_first_frame(clip: Clip) -> list[np.ndarray]:
    return [clip.masks[0]] * len(clip.masks)


def score_clips(clips: Iterable[Clip], predict) -> Report:
    """``predict(clip) -> id maps``, scored over all clips with the DAVIS protocol."""
    seqs: list[SequenceScore] = []
    for clip in clips:
        seqs.append(evaluate_sequence(predict(clip), clip.masks, name=f"synth-{clip.meta.seed}",
                                      object_ids=clip.object_ids))
    return summarize(seqs)


@dataclass(frozen=True)
class CorrectionOutcome:
    """One object of one clip: J after its first failure, without and with one corrective click."""

    seed: int
    obj_id: int
    failed_at: int           # first frame where J fell below the threshold
    j_after_without: float   # mean J over frames failed_at+1 .. end, tracker left alone
    j_after_with: float      # the same, after one corrective click on frame failed_at
    # J on frame failed_at itself, before and after the click: tells a click that does not fix
    # its own frame from a fixed frame that memory then fails to carry forward.
    j_at_without: float = float("nan")
    j_at_with: float = float("nan")


def correction_gain(model: LoadedModel, clips: Sequence[Clip], threshold: float = 0.5,
                    config: TrackerConfig = TrackerConfig()) -> list[CorrectionOutcome]:
    """For each object that the one-click run loses (J < threshold on some frame 1..T-3),
    re-run the clip and give one corrective click on that frame; compare J afterwards."""
    outcomes = []
    for clip in clips:
        base = track_one_click(model, clip, config)
        for oid in clip.object_ids:
            js = [region_j(base[t] == oid, clip.masks[t] == oid) for t in range(len(clip.masks))]
            failed = next((t for t in range(1, len(js) - 2) if js[t] < threshold), None)
            if failed is None:
                continue
            fixed = track_one_click(model, clip, config, correct=(oid, failed))
            after = range(failed + 1, len(js))
            outcomes.append(CorrectionOutcome(
                seed=clip.meta.seed, obj_id=oid, failed_at=failed,
                j_after_without=float(np.mean([js[t] for t in after])),
                j_after_with=float(np.mean([region_j(fixed[t] == oid, clip.masks[t] == oid) for t in after])),
                j_at_without=js[failed], j_at_with=region_j(fixed[failed] == oid, clip.masks[failed] == oid)))
    return outcomes



@dataclass(frozen=True)
class HeldOutProtocol:
    """The fixed held-out synthetic test set: seeds from TEST_SEED_START, never trained on."""

    clips: int = 30
    num_frames: int = 24       # 4x the training clip length: memory must carry beyond what training saw
    size: tuple[int, int] = (256, 256)
    num_objects: int = 2
    first_seed: int = 1_000_000  # synth.TEST_SEED_START; the trainer's monitor uses VAL_SEED_START

    def clip_list(self, count: int | None = None) -> list[Clip]:
        from vos_service.synth import generate_clip

        n = self.clips if count is None else count
        return [generate_clip(s, num_frames=self.num_frames, size=self.size, num_objects=self.num_objects)
                for s in range(self.first_seed, self.first_seed + n)]
