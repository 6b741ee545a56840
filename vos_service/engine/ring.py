"""The feature ring: the K most recent frames, with what a prompt on them needs.

A prompt may land on any frame still in the ring: the frame is re-decoded on
its cached image features, and the later frames are re-propagated from their
cached features. Evicting a slot frees its features and per-object outputs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Optional

import torch

from .errors import FrameNotAvailableError
from .sam_ops import ImageFeatures


@dataclass
class ObjectFrameState:
    """One object's output on one cached frame."""

    low_res: torch.Tensor  # (1, 1, S/4, S/4) float32 mask logits (NO_OBJ_SCORE where absent)
    score: float  # object score logit
    iou: float  # predicted IoU
    revision: int  # 0 first time, +1 per correction that revised it
    prompted: bool = False  # the object got a prompt on this frame
    points: Optional[dict] = None  # sam2 point_inputs accumulated on this frame (model coords)

    def nbytes(self) -> int:
        n = self.low_res.numel() * self.low_res.element_size()
        if self.points is not None:
            n += sum(t.numel() * t.element_size() for t in self.points.values())
        return n


@dataclass
class RingSlot:
    frame_index: int
    image: ImageFeatures
    height: int  # source frame size, for results at the source resolution
    width: int
    objects: dict[int, ObjectFrameState] = field(default_factory=dict)

    def nbytes(self) -> int:
        return self.image.nbytes() + sum(s.nbytes() for s in self.objects.values())


class FeatureRing:
    """A FIFO of RingSlots, oldest first, at most `capacity` long."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the feature ring holds at least 1 frame")
        self.capacity = capacity
        self._slots: deque[RingSlot] = deque(maxlen=capacity)

    def push(self, slot: RingSlot) -> None:
        self._slots.append(slot)  # deque(maxlen) drops the oldest

    @property
    def latest(self) -> Optional[RingSlot]:
        return self._slots[-1] if self._slots else None

    def get(self, frame_index: int) -> RingSlot:
        if self._slots:
            offset = frame_index - self._slots[0].frame_index
            if 0 <= offset < len(self._slots):
                return self._slots[offset]
            lo, hi = self._slots[0].frame_index, self._slots[-1].frame_index
            raise FrameNotAvailableError(
                f"frame {frame_index} is not in the feature ring (frames {lo}..{hi} are)")
        raise FrameNotAvailableError(f"frame {frame_index}: no frame has been tracked yet")

    def after(self, frame_index: int) -> list[RingSlot]:
        """Slots of frames later than frame_index, oldest first."""
        return [s for s in self._slots if s.frame_index > frame_index]

    def forget_object(self, obj_id: int) -> None:
        for s in self._slots:
            s.objects.pop(obj_id, None)

    def clear(self) -> None:
        self._slots.clear()

    def nbytes(self) -> int:
        return sum(s.nbytes() for s in self._slots)

    def __len__(self) -> int:
        return len(self._slots)
