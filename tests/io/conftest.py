"""Fixtures for io tests: the real H.264 clips from the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vos_service.io.video import iter_video_frames

# The clips are data, not code: they live outside the repo. Point
# VOS_TEST_VIDEOS elsewhere on machines that keep them somewhere else.
VIDEO_DIR = Path(os.environ.get("VOS_TEST_VIDEOS", "/work/shared/data/videos"))

@pytest.fixture(scope="session")
def video_dir() -> Path:
    if not (VIDEO_DIR / "01_dog.mp4").is_file():
        pytest.skip(f"test clips not found in {VIDEO_DIR} (set VOS_TEST_VIDEOS)")
    return VIDEO_DIR


@pytest.fixture(scope="session")
def dog_clip(video_dir: Path) -> Path:
    return video_dir / "01_dog.mp4"


@pytest.fixture(scope="session")
def dog_frames(dog_clip: Path) -> list[np.ndarray]:
    """First 12 decoded frames of the dog clip, (720, 1280, 3) uint8 RGB each."""
    return [f.rgb for f in iter_video_frames(dog_clip, max_frames=12)]
