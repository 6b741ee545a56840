"""Real-frame material for synthetic clips: object textures and backgrounds cut from the
clips in ``../shared/data/videos``.

A small pool of frames per video is decoded once per process (about a second for the four
720p clips) at reduced size. Frames alternate between the splits, so held-out test clips
cut their patches from other frames than training clips.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vos_service.synth.types import Split

__all__ = ["PoolFrame", "crop_background", "crop_patch", "load_pool"]

logger = logging.getLogger(__name__)

POOL_SIZE = (480, 270)   # (W, H) the frames are decoded at
POOL_FRAMES = range(0, 48, 6)  # which frames of each clip enter the pool (8 per clip)


@dataclass(frozen=True)
class PoolFrame:
    video: str          # file name of the clip
    index: int          # frame index in the clip
    split: Split        # the split that may cut from it
    image: np.ndarray   # (H, W, 3) uint8 RGB at POOL_SIZE

    @property
    def name(self) -> str:
        return f"real:{self.video}@{self.index}"


def load_pool(videos_dir: Path | None, split: Split) -> tuple[PoolFrame, ...]:
    """Pool frames of ``split`` from every ``*.mp4`` in ``videos_dir``; empty if there are none."""
    if videos_dir is None:
        return ()
    return tuple(f for f in _load_all(str(Path(videos_dir).resolve())) if f.split == split)


@functools.lru_cache(maxsize=2)
def _load_all(videos_dir: str) -> tuple[PoolFrame, ...]:
    root = Path(videos_dir)
    if not root.is_dir():
        return ()
    import av  # only needed when real material is used

    frames: list[PoolFrame] = []
    wanted = set(POOL_FRAMES)
    for path in sorted(root.glob("*.mp4")):
        try:
            with av.open(str(path)) as container:
                for i, frame in enumerate(container.decode(video=0)):
                    if i > max(wanted):
                        break
                    if i in wanted:
                        img = frame.to_ndarray(format="rgb24", width=POOL_SIZE[0], height=POOL_SIZE[1])
                        # Alternate pool frames between the splits (test gets every other one).
                        split = Split.TEST if (i // POOL_FRAMES.step) % 2 else Split.TRAIN
                        frames.append(PoolFrame(path.name, i, split, img))
        except (av.error.FFmpegError, OSError) as e:  # a broken clip must not stop generation
            logger.warning("skipping %s for synthetic patches: %s", path, e)
    return tuple(frames)


def crop_patch(rng: np.random.Generator, frame: PoolFrame, size: int) -> np.ndarray:
    """(size, size, 3) float32 RGB: a random square crop of the frame, resized."""
    h, w = frame.image.shape[:2]
    side = int(rng.uniform(0.15, 0.5) * min(h, w))
    x0 = int(rng.integers(0, w - side + 1))
    y0 = int(rng.integers(0, h - side + 1))
    crop = frame.image[y0:y0 + side, x0:x0 + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def crop_background(rng: np.random.Generator, frame: PoolFrame, height: int, width: int) -> np.ndarray:
    """(height, width, 3) float32 RGB: a random crop of the frame at the canvas' aspect, resized."""
    h, w = frame.image.shape[:2]
    aspect = width / height
    ch = int(rng.uniform(0.6, 1.0) * min(h, w / aspect))
    cw = max(1, min(w, int(round(ch * aspect))))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    crop = frame.image[y0:y0 + ch, x0:x0 + cw]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
