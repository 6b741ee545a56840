"""Drive the official sam2 SAM2VideoPredictor on exactly the engine's inputs.

Used by the parity tests and the benchmarks: same weights (copied from a
LoadedModel), same normalised frames, prompts in source pixels. Not used by
the service itself.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator, Optional
from unittest import mock

import numpy as np
import torch

from vos_service.engine.model import VIDEO_OVERRIDES, LoadedModel

# Seeded random weights at the default init make masks that barely depend on the
# prompt or the frame, so a parity check on them could hardly fail. Scaling the
# prompt encoder and mask decoder weights (and the object-score head once more)
# gives masks that differ between objects and frames and object scores that
# cross zero, while the memory loop stays numerically stable.
DISCRIMINATIVE_GAINS = (("sam_prompt_encoder.", 3.0), ("sam_mask_decoder.", 3.0),
                        ("sam_mask_decoder.pred_obj_score_head.layers.2.", 3.0))


def scale_weights(model: LoadedModel, gains=DISCRIMINATIVE_GAINS) -> LoadedModel:
    """Multiply every >= 2-D parameter whose name starts with a prefix by its gain (in place)."""
    with torch.no_grad():
        for name, p in model.sam.named_parameters():
            for prefix, gain in gains:
                if p.dim() >= 2 and name.startswith(prefix):
                    p.mul_(gain)
    return model


def build_official(model: LoadedModel, *, correct_as_cond: bool = True):
    """An official SAM2VideoPredictor with the same config, image size and weights as `model`."""
    from sam2.build_sam import build_sam2_video_predictor

    # The engine's own overrides (architecture, image size, extras) minus the ones
    # build_sam2_video_predictor adds itself.
    extra = [o for o in model.spec.hydra_overrides() if o not in VIDEO_OVERRIDES]
    if correct_as_cond:  # in a stream a correction is always a prompted memory
        extra.append("++model.add_all_frames_to_correct_as_cond=true")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = build_sam2_video_predictor(model.spec.base_config(), ckpt_path=None, device=model.spec.device,
                                          hydra_overrides_extra=extra)
    pred.load_state_dict(model.sam.state_dict())
    # Hole filling needs sam2's CUDA extension; without it the official code warns and
    # skips it. Turn it off explicitly so neither side depends on that.
    pred.fill_hole_area = 0
    return pred.eval()


def init_official_state(pred, images: torch.Tensor, height: int, width: int) -> dict:
    """The official init_state, fed (N, 3, S, S) normalised frames instead of a video file."""
    with mock.patch("sam2.sam2_video_predictor.load_video_frames",
                    lambda **kw: (images, height, width)):
        return pred.init_state(video_path="<tensor>")


class Official:
    """A thin driver: prompts in source pixels, results as {obj_id: (mask, score_logit)} per frame."""

    def __init__(self, pred, images: torch.Tensor, height: int, width: int, autocast=None) -> None:
        self.pred = pred
        self.state = init_official_state(pred, images, height, width)
        self.autocast = autocast or contextlib.nullcontext

    def add_points(self, frame: int, obj_id: int, points, labels, box=None, clear=True):
        with self.autocast():
            self.pred.add_new_points_or_box(
                self.state, frame_idx=frame, obj_id=obj_id,
                points=None if points is None else np.asarray(points, np.float32),
                labels=None if labels is None else np.asarray(labels, np.int32),
                box=None if box is None else np.asarray(box, np.float32), clear_old_points=clear)

    def add_mask(self, frame: int, obj_id: int, mask: np.ndarray):
        with self.autocast():
            self.pred.add_new_mask(self.state, frame_idx=frame, obj_id=obj_id, mask=mask)

    def propagate(self, start: Optional[int] = None, count: Optional[int] = None
                  ) -> Iterator[tuple[int, dict[int, tuple[np.ndarray, float]]]]:
        """Yield (frame, {obj_id: (bool mask at source size, object score logit)})."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with self.autocast():
                for f, obj_ids, masks in self.pred.propagate_in_video(
                        self.state, start_frame_idx=start, max_frame_num_to_track=count):
                    yield f, {oid: ((masks[i, 0] > 0).cpu().numpy(), self.score(f, oid))
                              for i, oid in enumerate(obj_ids)}

    def score(self, frame: int, obj_id: int) -> float:
        idx = self.state["obj_id_to_idx"][obj_id]
        d = self.state["output_dict_per_obj"][idx]
        out = d["cond_frame_outputs"].get(frame) or d["non_cond_frame_outputs"][frame]
        return float(out["object_score_logits"].reshape(-1)[0])
