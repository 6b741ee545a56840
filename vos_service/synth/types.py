"""Options, results and the train / test seed split of the synthetic video generator."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import vos_service

__all__ = [
    "DEFAULT_VIDEOS_DIR",
    "TEST_SEED_START",
    "ActorMeta",
    "Clip",
    "ClipMeta",
    "Split",
    "SynthOptions",
    "heldout_seeds",
    "split_of",
    "train_seeds",
]

# The held-out test set: seeds >= TEST_SEED_START are for evaluation only and must never
# be trained on. Training draws seeds below it (train_seeds). Real-frame patches are split
# too: test clips cut them from other frames of the videos than training clips do.
TEST_SEED_START = 1_000_000
# Training monitors itself on seeds [VAL_SEED_START, TEST_SEED_START) and draws its clips
# below VAL_SEED_START, so neither the monitor nor the data ever touches the test set.
VAL_SEED_START = 900_000

# Real clips beside the checkout (../shared/data/videos); absent on a bare install.
DEFAULT_VIDEOS_DIR = Path(vos_service.__file__).resolve().parents[2] / "shared" / "data" / "videos"

SHAPE_KINDS = ("ellipse", "polygon", "star")


class Split(enum.Enum):
    TRAIN = "train"
    TEST = "test"


def split_of(seed: int) -> Split:
    """Which split a seed belongs to."""
    if seed < 0:
        raise ValueError(f"seeds are non-negative, got {seed}")
    return Split.TEST if seed >= TEST_SEED_START else Split.TRAIN


def train_seeds(count: int, start: int = 0) -> range:
    """``count`` training seeds from ``start``; never reaches into the test range."""
    if start < 0 or start + count > TEST_SEED_START:
        raise ValueError(f"training seeds must lie in [0, {TEST_SEED_START})")
    return range(start, start + count)


def heldout_seeds(count: int) -> range:
    """The first ``count`` seeds of the fixed held-out test set."""
    return range(TEST_SEED_START, TEST_SEED_START + count)


@dataclass(frozen=True)
class SynthOptions:
    """What a generated clip may contain. Fixed per clip; every field has a default.

    Probabilities are per clip or per object as noted; lengths are in pixels or as a
    fraction of min(H, W) as noted; speeds are per frame.
    """

    shape_kinds: tuple[str, ...] = SHAPE_KINDS  # outlines objects are drawn from (ellipse, polygon, star)
    object_size: tuple[float, float] = (0.10, 0.22)  # object radius range, fraction of min(H, W)
    texture_strength: float = 1.0    # 0 = flat-coloured objects, 1 = fully textured
    real_patch_prob: float = 0.3     # per object: texture cut from a real video frame
    real_background_prob: float = 0.2  # per clip: background is a real frame, not a procedural texture
    videos_dir: Path | None = DEFAULT_VIDEOS_DIR  # real clips to cut from; None or missing = procedural only
    max_speed: float = 0.035         # top object speed, fraction of min(H, W) per frame
    max_rotation: float = 5.0        # top rotation speed, degrees per frame
    scale_change: float = 0.25       # amplitude of the relative size change over a clip
    deformation: float = 0.12        # amplitude of non-rigid outline wobble and stretch, relative
    occlusion_prob: float = 0.5      # per clip: one object is fully hidden behind another mid-clip
    leave_reenter_prob: float = 0.35  # per object: it leaves the frame mid-clip and comes back
    num_distractors: tuple[int, int] = (0, 2)  # untracked objects per clip, inclusive range
    lookalike_prob: float = 0.7      # per distractor: it copies a tracked object's shape and look
    camera_shake: float = 1.5        # std of per-frame camera jitter, pixels
    camera_pan: float = 0.6          # top background drift speed, pixels per frame
    lighting: float = 0.2            # amplitude of global and gradient brightness changes
    noise_std: float = 2.0           # sensor noise std, intensity levels
    # Off by default, so the held-out test clips stay what they were; training turns them on.
    cutout_prob: float = 0.0         # per object: outline and texture cut from a real frame's region
    blur_prob: float = 0.0           # per clip: defocus or motion blur on every frame
    blur_sigma: tuple[float, float] = (0.6, 1.8)  # blur strength range, pixels

    def __post_init__(self) -> None:
        bad = [k for k in self.shape_kinds if k not in SHAPE_KINDS]
        if bad or not self.shape_kinds:
            raise ValueError(f"shape_kinds must be a non-empty subset of {SHAPE_KINDS}, got {self.shape_kinds}")
        lo, hi = self.object_size
        if not 0 < lo <= hi <= 0.5:
            raise ValueError(f"object_size must satisfy 0 < lo <= hi <= 0.5, got {self.object_size}")
        for name in ("texture_strength", "real_patch_prob", "real_background_prob", "occlusion_prob",
                     "leave_reenter_prob", "lookalike_prob", "cutout_prob", "blur_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("max_speed", "max_rotation", "scale_change", "deformation", "camera_shake",
                     "camera_pan", "lighting", "noise_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.scale_change >= 0.9 or self.deformation >= 0.5:
            raise ValueError("scale_change must be < 0.9 and deformation < 0.5")
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < lo <= hi, got {self.blur_sigma}")
        d_lo, d_hi = self.num_distractors
        if not 0 <= d_lo <= d_hi:
            raise ValueError(f"num_distractors must satisfy 0 <= lo <= hi, got {self.num_distractors}")

    @classmethod
    def plain(cls, **overrides) -> SynthOptions:
        """Flat colours, no distractors, no camera or lighting effects: every pixel is predictable."""
        base: dict[str, Any] = dict(texture_strength=0.0, real_patch_prob=0.0, real_background_prob=0.0,
                    occlusion_prob=0.0, leave_reenter_prob=0.0, num_distractors=(0, 0),
                    camera_shake=0.0, camera_pan=0.0, lighting=0.0, noise_std=0.0)
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class ActorMeta:
    """One drawn object, tracked (label > 0) or distractor (label 0)."""

    label: int                     # object id in the masks; 0 for an untracked distractor
    shape: str                     # outline kind: ellipse, polygon, star or cutout
    texture: str                   # texture kind, or "real:<video>@<frame>" for a real patch
    color: tuple[int, int, int]    # mean RGB of its texture
    z: int                         # drawing order: higher is in front
    lookalike_of: int | None = None  # label of the tracked object a distractor copies
    leaves: tuple[int, int] | None = None   # frames [first, last] it is planned fully outside
    occludes: tuple[int, int, int] | None = None  # (victim label, first, last frame) it covers it


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not metas
class ClipMeta:
    seed: int
    split: Split
    size: tuple[int, int]          # (H, W)
    options: SynthOptions
    background: str                # texture kind, or "real:<video>@<frame>"
    actors: tuple[ActorMeta, ...]  # in drawing order (back to front)
    camera: np.ndarray = field(repr=False)  # (T, 2) float32 camera shake offset (dx, dy) per frame


@dataclass(frozen=True, eq=False)
class Clip:
    """A generated video with ground truth.

    frames: T arrays HxWx3 uint8 RGB; masks: T arrays HxW uint8 object ids (0 = background);
    object_ids: the tracked ids, 1..N, every one visible in frame 0.
    """

    frames: list[np.ndarray]
    masks: list[np.ndarray]
    object_ids: tuple[int, ...]
    meta: ClipMeta

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def visible(self, object_id: int) -> np.ndarray:
        """(T,) bool: whether any pixel of the object is visible in each frame."""
        return np.array([bool(np.any(m == object_id)) for m in self.masks])
