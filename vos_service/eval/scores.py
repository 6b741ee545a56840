"""Per-sequence and whole-benchmark J&F, averaged the way the DAVIS 2017 toolkit does.

Semi-supervised protocol (davis2017-evaluation, ``davis2017/evaluation.py``,
``DAVISEvaluation.evaluate``):

- the objects are ids 1..max(first ground-truth frame); a prediction that uses a
  higher id is an error, an id it never uses scores as an empty mask;
- the first frame (it carries the given mask) and the last frame are left out;
- each object gets mean / recall / decay of J and of F over the remaining frames;
- the benchmark's J-Mean and F-Mean average those per-object means over every object
  of every sequence (a sequence with three objects weighs three times one with one),
  and J&F-Mean = (J-Mean + F-Mean) / 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vos_service.eval.metrics import DEFAULT_BOUND_TH, boundary_f, region_j, statistics

__all__ = ["EvalError", "ObjectScore", "Report", "SequenceScore", "evaluate_sequence", "summarize"]

# DAVIS marks pixels that count for neither side with this label in the ground truth.
VOID_LABEL = 255


class EvalError(ValueError):
    """Predictions and ground truth cannot be compared (missing frames, bad ids, wrong shapes)."""


@dataclass(frozen=True)
class ObjectScore:
    """One object of one sequence: J and F per evaluated frame and their statistics."""

    object_id: int
    j: np.ndarray  # (T_eval,) float64, J per evaluated frame
    f: np.ndarray  # (T_eval,) float64, F per evaluated frame
    j_mean: float
    j_recall: float
    j_decay: float
    f_mean: float
    f_recall: float
    f_decay: float

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2.0


@dataclass(frozen=True)
class SequenceScore:
    """All objects of one sequence."""

    name: str
    frames: tuple[int, ...]          # indices (into the sequence) of the evaluated frames
    objects: tuple[ObjectScore, ...]  # ordered by object id

    @property
    def j_mean(self) -> float:
        return _mean(o.j_mean for o in self.objects)

    @property
    def f_mean(self) -> float:
        return _mean(o.f_mean for o in self.objects)

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2.0


@dataclass(frozen=True)
class Report:
    """Benchmark summary: every statistic is a mean over all objects of all sequences."""

    sequences: tuple[SequenceScore, ...]
    j_mean: float
    j_recall: float
    j_decay: float
    f_mean: float
    f_recall: float
    f_decay: float

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2.0

    @property
    def num_objects(self) -> int:
        return sum(len(s.objects) for s in self.sequences)

    def to_dict(self) -> dict:
        """JSON-ready: global statistics (keyed like the toolkit's CSV), per-object statistics and
        per-frame J and F (aligned with the sequence's ``frames``)."""
        return {
            "J&F-Mean": self.jf_mean, "J-Mean": self.j_mean, "J-Recall": self.j_recall,
            "J-Decay": self.j_decay, "F-Mean": self.f_mean, "F-Recall": self.f_recall,
            "F-Decay": self.f_decay, "num_sequences": len(self.sequences), "num_objects": self.num_objects,
            "sequences": [
                {"name": s.name, "J&F-Mean": s.jf_mean, "J-Mean": s.j_mean, "F-Mean": s.f_mean,
                 "frames": list(s.frames),
                 "objects": [{"id": o.object_id, "J-Mean": o.j_mean, "J-Recall": o.j_recall,
                              "J-Decay": o.j_decay, "F-Mean": o.f_mean, "F-Recall": o.f_recall,
                              "F-Decay": o.f_decay, "J": o.j.tolist(), "F": o.f.tolist()}
                             for o in s.objects]}
                for s in self.sequences
            ],
        }


def evaluate_sequence(pred_masks: Sequence[np.ndarray | None], gt_masks: Sequence[np.ndarray], *,
                      name: str = "", object_ids: Sequence[int] | None = None,
                      skip_first_last: bool = True, bound_th: float = DEFAULT_BOUND_TH) -> SequenceScore:
    """Score one sequence of id maps against its ground truth.

    pred_masks, gt_masks: T arrays of HxW integer object ids (0 = background; 255 in the
    ground truth = void). ``object_ids`` defaults to 1..max(gt_masks[0]) as DAVIS does.
    ``skip_first_last`` (the DAVIS protocol) drops frame 0 and frame T-1; the entries of
    ``pred_masks`` at those frames are then never read and may be None.
    """
    if len(pred_masks) != len(gt_masks):
        raise EvalError(f"{name or 'sequence'}: {len(pred_masks)} predicted frames for {len(gt_masks)} annotated")
    if not gt_masks:
        raise EvalError(f"{name or 'sequence'}: no frames")
    frames = tuple(range(1, len(gt_masks) - 1)) if skip_first_last else tuple(range(len(gt_masks)))
    if not frames:
        raise EvalError(f"{name or 'sequence'}: {len(gt_masks)} frames; the DAVIS protocol needs at least 3 "
                        "(first and last are not scored)")
    if object_ids is None:
        first = np.asarray(gt_masks[0])
        top = int(first[first != VOID_LABEL].max(initial=0))
        object_ids = range(1, top + 1)
    ids = tuple(int(i) for i in object_ids)
    max_id = max(ids, default=0)

    j = np.zeros((len(ids), len(frames)))
    f = np.zeros((len(ids), len(frames)))
    for col, t in enumerate(frames):
        gt, pred = np.asarray(gt_masks[t]), pred_masks[t]
        if pred is None:
            raise EvalError(f"{name or 'sequence'}: no prediction for frame {t}")
        pred = np.asarray(pred)
        if pred.shape != gt.shape or gt.ndim != 2:
            raise EvalError(f"{name or 'sequence'} frame {t}: prediction {pred.shape} vs ground truth {gt.shape}")
        pred_top = int(pred.max(initial=0))
        if pred_top > max_id:
            # The toolkit stops here too: an id the ground truth never gave cannot be matched.
            raise EvalError(f"{name or 'sequence'} frame {t}: predicted object id {pred_top} "
                            f"but the ground truth has ids {ids}")
        void = gt == VOID_LABEL
        has_void = bool(void.any())
        for row, obj in enumerate(ids):
            p, g = pred == obj, gt == obj
            j[row, col] = region_j(p, g, void if has_void else None)
            f[row, col] = boundary_f(p, g, void if has_void else None, bound_th)

    objects = []
    for row, obj in enumerate(ids):
        js, fs = statistics(j[row]), statistics(f[row])
        objects.append(ObjectScore(obj, j[row], f[row], js.mean, js.recall, js.decay,
                                   fs.mean, fs.recall, fs.decay))
    return SequenceScore(name=name, frames=frames, objects=tuple(objects))


def summarize(sequences: Sequence[SequenceScore]) -> Report:
    """Benchmark statistics over all objects of all given sequences."""
    objs = [o for s in sequences for o in s.objects]
    return Report(
        sequences=tuple(sequences),
        j_mean=_mean(o.j_mean for o in objs), j_recall=_mean(o.j_recall for o in objs),
        j_decay=_mean(o.j_decay for o in objs), f_mean=_mean(o.f_mean for o in objs),
        f_recall=_mean(o.f_recall for o in objs), f_decay=_mean(o.f_decay for o in objs),
    )


def _mean(values) -> float:
    v = list(values)
    return float(np.mean(v)) if v else math.nan
