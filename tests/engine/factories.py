"""Factories for engine tests: small seeded random SAM 2 models and real frames."""

from __future__ import annotations

from functools import lru_cache

import av
import numpy as np
import torch

from tests.conftest import VIDEOS
from tests.support.reference import DISCRIMINATIVE_GAINS, scale_weights
from vos_service.engine.frames import preprocess
from vos_service.engine.model import LoadedModel, ModelSpec, build_model
from vos_service.engine.tracker import StreamTracker, TrackerConfig

TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"


def make_model(image_size: int = 256, seed: int = 0, dtype: str = "fp32",
               gains=DISCRIMINATIVE_GAINS) -> LoadedModel:
    """sam2.1 tiny with seeded random weights, >=2-D weights scaled by `gains` (name prefix, factor)."""
    return scale_weights(build_model(ModelSpec(TINY, random_init_seed=seed, image_size=image_size,
                                               dtype=dtype)), gains)


def make_nano_model(seed: int = 0, gains=DISCRIMINATIVE_GAINS) -> LoadedModel:
    """The project's 2.3 M-parameter 'nano' architecture (256 px) with seeded random weights."""
    return scale_weights(build_model(ModelSpec("nano", random_init_seed=seed)), gains)


def make_tracker(model: LoadedModel | None = None, **config) -> StreamTracker:
    return StreamTracker(model or make_model(), TrackerConfig(**config))


@lru_cache(maxsize=4)
def _clip(name: str, count: int, stride: int) -> tuple[np.ndarray, ...]:
    out = []
    with av.open(str(VIDEOS / name)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i % stride == 0:
                out.append(fr.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return tuple(out)


def real_frames(name: str = "02_cups.mp4", count: int = 30, stride: int = 3) -> list[np.ndarray]:
    """`count` RGB frames of a real clip, every `stride`-th one (more motion per step)."""
    return list(_clip(name, count, stride))


def normalised(frames: list[np.ndarray], image_size: int) -> torch.Tensor:
    return torch.cat([preprocess(f, image_size) for f in frames])
