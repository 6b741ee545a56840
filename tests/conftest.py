"""Shared test factories. Real clips live in ../shared/data/videos beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VIDEOS = Path(os.environ.get("VOS_TEST_VIDEOS", REPO.parent / "shared" / "data" / "videos"))


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    # The clips are part of the test environment (CI lays ../shared beside the clone):
    # missing clips are an error, not a reason to skip.
    assert VIDEOS.is_dir() and any(VIDEOS.glob("*.mp4")), f"test clips not found in {VIDEOS}"
    return VIDEOS
