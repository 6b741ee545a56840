"""Fixtures for io tests: the real H.264 clips from the shared data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vos_service.io.video import iter_video_frames


@pytest.fixture(scope="session")
def video_dir(videos_dir: Path) -> Path:
    return videos_dir


@pytest.fixture(scope="session")
def dog_clip(video_dir: Path) -> Path:
    return video_dir / "01_dog.mp4"


@pytest.fixture(scope="session")
def dog_frames(dog_clip: Path) -> list[np.ndarray]:
    """First 12 decoded frames of the dog clip, (720, 1280, 3) uint8 RGB each."""
    return [f.rgb for f in iter_video_frames(dog_clip, max_frames=12)]
