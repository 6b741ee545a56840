"""The shared image encoder: frames (of one or several streams) -> ImageFeatures.

One pass of the image encoder per frame, whatever the number of objects; the
runtime batches frames of different streams into one pass. The backbone's
position encoding depends only on the image size, so one copy is kept and
shared by every frame instead of caching one per frame.
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Optional

import numpy as np
import torch

from . import sam_ops
from .frames import preprocess
from .model import LoadedModel
from .sam_ops import ImageFeatures
from .types import Stage

StageTimer = Callable[[str], ContextManager]


def no_timer(_stage: str) -> ContextManager:
    return contextlib.nullcontext()


class ImageEncoder:
    def __init__(self, model: LoadedModel, timer: StageTimer = no_timer) -> None:
        self.model = model
        self.timer = timer
        self._pos: Optional[list[torch.Tensor]] = None

    @torch.inference_mode()
    def encode(self, frames: list[np.ndarray]) -> list[ImageFeatures]:
        """uint8 (H, W, 3) RGB frames of any sizes -> one ImageFeatures each, in one encoder pass."""
        with self.timer(Stage.PREPROCESS):  # resize + normalise: grows with the camera's resolution
            images = torch.cat([preprocess(f, self.model.image_size, self.model.device) for f in frames])
        return self.encode_images(images)

    @torch.inference_mode()
    def encode_images(self, images: torch.Tensor) -> list[ImageFeatures]:
        """(N, 3, S, S) normalised images (the official predictor's input) -> ImageFeatures."""
        with self.timer(Stage.ENCODE), self.model.autocast():
            feats = sam_ops.encode_images(self.model.sam, images.to(self.model.device))
        for f in feats:
            if self._pos is None or [p.shape for p in self._pos] != [p.shape for p in f.pos]:
                self._pos = [p.clone() for p in f.pos]
            f.pos = self._pos
        return feats

    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self._pos or [])
