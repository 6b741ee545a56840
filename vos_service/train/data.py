"""Synthetic clips -> SAM2Train batches.

Step ``s`` of a run always sees the same clips (seeds are a function of the run's
seed and the step), so a resumed run continues the exact data order. Seeds stay
below VAL_SEED_START: neither the validation range the trainer monitors itself on
nor the held-out test set (seeds >= TEST_SEED_START) is ever drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import IterableDataset

from vos_service.engine.frames import normalize
from vos_service.synth import VAL_SEED_START, Clip, SynthOptions, generate_clip
from vos_service.train.config import TrainConfig

# What the training clips may contain. "heldout": the test set's own options (SynthOptions()).
# "real": more of the real clips' material (objects cut from real frames as coherent regions,
# real backgrounds), blur and larger scale changes, for a model that must hold real objects.
DATA_PRESETS = {
    "heldout": SynthOptions(),
    "real": SynthOptions(cutout_prob=0.4, real_background_prob=0.35, blur_prob=0.3, scale_change=0.35),
    # A milder dose: the held-out options plus some cut-outs and blur.
    "mixed": SynthOptions(cutout_prob=0.15, blur_prob=0.15),
}

# Odd multiplier: spreads consecutive runs' seeds apart without collisions inside a run.
_RUN_STRIDE = 7_919
MAX_CLIPS_PER_STEP = 64  # each step owns a block of this many seeds, whatever its batch shape


@dataclass(frozen=True)
class ClipPlan:
    seed: int
    num_objects: int


def plan_step(run_seed: int, step: int, clips_per_step: int, max_objects: int) -> list[ClipPlan]:
    """Which clips step ``step`` trains on."""
    if not 0 < clips_per_step <= MAX_CLIPS_PER_STEP:
        raise ValueError(f"clips_per_step must be in [1, {MAX_CLIPS_PER_STEP}], got {clips_per_step}")
    plans = []
    for b in range(clips_per_step):
        seed = (run_seed * _RUN_STRIDE + step * MAX_CLIPS_PER_STEP + b) % VAL_SEED_START
        n = 1 + int(np.random.default_rng([seed, 99]).integers(max_objects))
        plans.append(ClipPlan(seed=seed, num_objects=n))
    return plans


def _strided(clip: Clip, stride: int) -> Clip:
    """Every ``stride``-th frame of ``clip`` (frame 0, where the prompt goes, first)."""
    if stride == 1:
        return clip
    meta = replace(clip.meta, camera=clip.meta.camera[::stride])  # one camera row per kept frame
    return replace(clip, frames=clip.frames[::stride], masks=clip.masks[::stride], meta=meta)


def to_batch(clips: list[Clip]):
    """Clips of equal length and model-sized square frames -> training.utils BatchedVideoDatapoint."""
    from training.utils.data_utils import BatchedVideoDatapoint, BatchedVideoMetaData

    t_len = len(clips[0].frames)
    imgs = torch.stack([  # [T, B, 3, S, S]
        torch.cat([normalize(torch.from_numpy(f).permute(2, 0, 1)) for f in clip.frames]) for clip in clips
    ], dim=1)
    masks, obj_idx, ident = [], [], []
    for b, clip in enumerate(clips):
        labels = torch.from_numpy(np.stack(clip.masks))  # [T, S, S] object ids
        for oid in clip.object_ids:
            masks.append(labels == oid)
            obj_idx.append(torch.stack([torch.arange(t_len), torch.full((t_len,), b)], dim=1))
            ident.append(torch.stack([torch.full((t_len,), b), torch.full((t_len,), oid), torch.arange(t_len)],
                                     dim=1))
    masks_t = torch.stack(masks, dim=1)  # [T, O, S, S]
    size = torch.tensor(clips[0].frames[0].shape[:2]).expand(t_len, len(masks), 2)
    meta = BatchedVideoMetaData(unique_objects_identifier=torch.stack(ident, dim=1), frame_orig_size=size,
                                batch_size=[t_len])
    return BatchedVideoDatapoint(img_batch=imgs, obj_to_frame_idx=torch.stack(obj_idx, dim=1).int(),
                                 masks=masks_t, metadata=meta, dict_key="synth", batch_size=[t_len])


class SynthStream(IterableDataset):
    """Batches for steps start, start+1, ... (generated in a DataLoader worker)."""

    def __init__(self, cfg: TrainConfig, start_step: int, image_size: int):
        self.cfg, self.start_step, self.image_size = cfg, start_step, image_size

    def __iter__(self) -> Iterator:
        torch.set_num_threads(1)  # the worker generates; the main process owns the cores for training
        step = self.start_step
        while True:
            clips_per_step, frames = self.cfg.batch_shape(step)
            plans = plan_step(self.cfg.seed, step, clips_per_step, self.cfg.max_objects)
            stride = self.cfg.frame_stride if frames > 1 else 1
            clips = [_strided(generate_clip(p.seed, num_frames=frames * stride, size=(self.image_size,) * 2,
                                            num_objects=p.num_objects, options=DATA_PRESETS[self.cfg.data]),
                              stride) for p in plans]
            yield step, to_batch(clips)
            step += 1
