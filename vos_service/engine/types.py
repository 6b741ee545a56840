"""Dataclasses that cross engine boundaries.

Coordinates are source-image pixels (x right, y down) unless a field says
otherwise; masks at source resolution are numpy bool arrays so that callers
(io/, runtime/) never need torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .errors import InvalidPromptError


class Stage(str, enum.Enum):
    """A timed step of a frame's way through the service: the `stage` label of vos_stage_seconds.

    The engine times its own stages through a timer callback it is given and never learns
    what records them (runtime passes Metrics.stage).
    """

    FRAME_DECODE = "frame_decode"  # api: JPEG/PNG/raw/H.264 bytes -> RGB, off the event loop
    PREPROCESS = "preprocess"  # resize + normalise to the model's input
    ENCODE = "encode"  # the image encoder, once per frame (batched across streams)
    MEMORY_ATTENTION = "memory_attention"
    MASK_DECODE = "mask_decode"
    MEMORY_ENCODE = "memory_encode"
    UPSAMPLE = "upsample"  # masks back to the source size
    PUBLISH = "publish"  # runtime: hand the results to the Redis publisher

    def __str__(self) -> str:  # a label value, a log field: the name the metrics carry
        return self.value


class PromptedPolicy(str, enum.Enum):
    """Which prompted (conditioning) memories stay in a bounded prompted bank."""

    FIRST_AND_RECENT = "first_and_recent"  # the first prompt + the N-1 most recent
    RECENT = "recent"  # the N most recent = official max_cond_frames_in_attn=N


@dataclass(frozen=True)
class Prompt:
    """A click set, a box or a mask for one object on one frame.

    points: (P, 2) float32, xy in source pixels; labels: (P,) int32, 1 = positive,
    0 = negative. box: (x0, y0, x1, y1) in source pixels. mask: (H, W) bool at the
    source resolution. A box may come with points (the box goes first, as SAM
    expects); a mask excludes both.
    """

    points: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    box: Optional[tuple[float, float, float, float]] = None
    mask: Optional[np.ndarray] = None

    @staticmethod
    def from_points(points, labels) -> "Prompt":
        return Prompt(points=np.asarray(points, np.float32).reshape(-1, 2),
                      labels=np.asarray(labels, np.int32).reshape(-1))

    def validate(self, height: int, width: int) -> None:
        """Raise InvalidPromptError unless the prompt fits a height x width frame."""
        has_points = self.points is not None and len(self.points) > 0
        if self.mask is not None:
            if has_points or self.box is not None:
                raise InvalidPromptError("a mask prompt cannot be combined with points or a box")
            m = np.asarray(self.mask)
            if m.ndim != 2 or m.shape != (height, width):
                raise InvalidPromptError(
                    f"mask must be {height}x{width} (the frame size), got shape {m.shape}")
            return
        if not has_points and self.box is None:
            raise InvalidPromptError("a prompt needs points, a box or a mask")
        if self.points is not None:
            p = np.asarray(self.points)
            lab = None if self.labels is None else np.asarray(self.labels)
            if p.ndim != 2 or p.shape[1] != 2:
                raise InvalidPromptError(f"points must be (P, 2), got shape {p.shape}")
            if lab is None or lab.shape != (p.shape[0],):
                raise InvalidPromptError("labels must give one 0/1 label per point")
            if not np.isin(lab, (0, 1)).all():
                raise InvalidPromptError("labels must be 1 (positive) or 0 (negative)")
            if not np.isfinite(p).all():
                raise InvalidPromptError("points must be finite")
            if (p[:, 0] < 0).any() or (p[:, 0] > width).any() or (p[:, 1] < 0).any() or (p[:, 1] > height).any():
                raise InvalidPromptError(f"points must lie inside the {width}x{height} frame")
        if self.box is not None:
            if len(self.box) != 4 or not np.isfinite(self.box).all():
                raise InvalidPromptError("box must be 4 finite numbers x0, y0, x1, y1")
            x0, y0, x1, y1 = self.box
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise InvalidPromptError(
                    f"box must satisfy 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height}")


@dataclass(frozen=True)
class ObjectResult:
    """One object's masklet on one frame."""

    obj_id: int
    mask: np.ndarray  # (H, W) bool at the source resolution
    score: float  # object score logit (SAM 2 occlusion head); > 0 means visible
    visible: bool
    iou: float  # the mask decoder's predicted IoU of the chosen mask
    box: Optional[tuple[int, int, int, int]]  # x0, y0, x1, y1 (exclusive) of the mask; None if empty
    revision: int  # 0 when first computed; +1 each time a correction revises it
    prompted: bool = False  # True on a frame where this object got a prompt


@dataclass(frozen=True)
class FrameResult:
    """All tracked objects on one frame."""

    frame_index: int
    objects: list[ObjectResult] = field(default_factory=list)

    def by_id(self) -> dict[int, ObjectResult]:
        return {o.obj_id: o for o in self.objects}
