"""Calibrate the occlusion head's threshold on validation clips: a post-training step of ``train ship``.

SAM 2 calls an object visible on a frame where its object-score logit (the mask
decoder's occlusion head) is > 0; below it the frame's mask is empty and its memory
says "not here". A model trained on clips where objects are rarely gone learns a head
that almost never says so: nano v3 called the object visible on all 92 object-frames
of 16 validation clips where it had left the frame or was hidden, and segmented
something else there (J 0), though its logits were lower there (median 1.5, against
3.2 where the object was present).

Subtracting ``shift`` from the head's output bias moves the threshold to ``shift``.
It is picked by J&F on validation clips (seeds from ``FIRST_SEED``: disjoint from the
trainer's monitor, which uses the first ``val_clips`` validation seeds, and from the
held-out test set); the ship gate then judges the result on the held-out set as for
any candidate. The shifted weights are a plain SAM 2 state dict: the engine, and the
official predictor, run them unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vos_service.engine.model import LoadedModel
from vos_service.eval.tracking import HeldOutProtocol, score_clips, track_one_click
from vos_service.synth.types import TEST_SEED_START, VAL_SEED_START

__all__ = ["BIAS_KEY", "EXTEND_TO", "FIRST_SEED", "SHIFTS", "Calibration", "CalibrationPlan", "calibrate_occlusion",
           "shift_weights", "trained_shift"]

FIRST_SEED = VAL_SEED_START + 200  # the monitor uses [VAL_SEED_START, + val_clips); v3's comparisons + 100..129
SHIFTS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)  # logit units; nano v3 peaked at 2.0 and fell fast past 2.5
# v6 peaked at the grid's edge (2.5): while the largest shift tried is the best, one more step is tried, up to here
EXTEND_TO = 4.0
BIAS_KEY = "sam_mask_decoder.pred_obj_score_head.layers.2.bias"  # the head's last layer (an MLP in SAM 2.1)


@dataclass(frozen=True)
class CalibrationPlan:
    """What to try: the shifts, on which validation clips (the held-out protocol's shape, other seeds)."""

    shifts: tuple[float, ...] = SHIFTS
    clips: HeldOutProtocol = HeldOutProtocol(clips=24, first_seed=FIRST_SEED)
    extend_to: float = EXTEND_TO  # past the grid, in steps of the grid's last spacing (0.5 when it has one shift)


@dataclass(frozen=True)
class Calibration:
    shift: float  # subtracted from the occlusion head's bias: visible means logit > shift of the old head
    clips: int
    first_seed: int
    jf_by_shift: dict[float, float]  # validation J&F at each shift tried

    def to_dict(self) -> dict:
        return asdict(self) | {"jf_by_shift": {f"{k:g}": v for k, v in self.jf_by_shift.items()}}


def _bias(model: LoadedModel) -> torch.Tensor:
    return dict(model.sam.named_parameters())[BIAS_KEY]


def calibrate_occlusion(model: LoadedModel, plan: CalibrationPlan = CalibrationPlan()) -> Calibration:
    """The shift with the best validation J&F (ties: the smaller); ``model`` is left as it was."""
    if plan.clips.first_seed + plan.clips.clips > TEST_SEED_START or plan.clips.first_seed < VAL_SEED_START:
        raise ValueError("calibration clips must be validation seeds, never the held-out test set")
    val = plan.clips.clip_list()
    bias = _bias(model)
    original = bias.detach().clone()
    scores: dict[float, float] = {}

    def best() -> float:
        return max(scores, key=lambda s: (scores[s], -s))

    grid = sorted(plan.shifts)
    step = grid[-1] - grid[-2] if len(grid) > 1 else 0.5
    try:
        while grid:
            shift = grid.pop(0)
            with torch.no_grad():
                bias.copy_(original - shift)
            scores[shift] = score_clips(val, lambda clip: track_one_click(model, clip)).jf_mean
            if not grid and best() == shift and shift + step <= plan.extend_to:
                grid.append(shift + step)  # the optimum may lie past the grid's edge
    finally:
        with torch.no_grad():
            bias.copy_(original)
    return Calibration(best(), plan.clips.clips, plan.clips.first_seed, scores)


def shift_weights(path: Path, calibration: Calibration) -> None:
    """Apply ``calibration`` to a weights file (export.py's format), in place; noted in its meta."""
    weights = torch.load(path, map_location="cpu", weights_only=True)
    weights["model"][BIAS_KEY] = weights["model"][BIAS_KEY] - calibration.shift
    weights["meta"]["calibration"] = calibration.to_dict()
    tmp = Path(path).with_suffix(".tmp")
    torch.save(weights, tmp)
    tmp.replace(path)


def trained_shift(path: Path) -> float:
    """The shift a weights file was shipped with (0: none), to undo before training on from it or
    averaging it: the shift is a ship step (``ship --calibrate`` sets it again), not training."""
    meta = torch.load(path, map_location="cpu", weights_only=True).get("meta") or {}
    return float((meta.get("calibration") or {}).get("shift", 0.0))
