from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from vos_service.io.overlay import VideoWriter, draw_overlay
from vos_service.io.video import iter_video_frames, probe_video


def test_overlay_mp4_round_trip(tmp_path: Path, dog_clip: Path, dog_frames: list[np.ndarray]) -> None:
    fps = probe_video(dog_clip).fps
    h, w = dog_frames[0].shape[:2]
    mask = np.zeros((h, w), bool)
    mask[200:500, 300:700] = True
    sources = [draw_overlay(rgb, [(1, mask)]) for rgb in dog_frames]
    out_path = tmp_path / "overlay.mp4"

    with VideoWriter(out_path, fps=fps) as writer:
        for rgb in sources:
            writer.write(rgb)
        assert writer.codec == "libx264"
        assert writer.size == (h, w)
    assert writer.frames_written == len(sources)

    info = probe_video(out_path)
    assert (info.width, info.height, info.codec) == (w, h, "h264")
    assert info.fps == pytest.approx(fps, rel=1e-6)
    decoded = list(iter_video_frames(out_path))
    assert len(decoded) == len(sources)
    for src, back in zip(sources, decoded):
        assert back.rgb.shape == src.shape
        diff = np.abs(back.rgb.astype(np.int16) - src.astype(np.int16)).mean()
        assert diff < 4.0, diff  # lossy, but crf 20 stays close


def test_odd_sizes_are_padded_to_even(tmp_path: Path, dog_frames: list[np.ndarray]) -> None:
    crops = [rgb[:75, :101] for rgb in dog_frames[:4]]  # non-contiguous views too
    out_path = tmp_path / "odd.mp4"
    with VideoWriter(out_path, fps=25) as writer:
        for rgb in crops:
            writer.write(rgb)
    assert writer.size == (76, 102)

    decoded = list(iter_video_frames(out_path))
    assert len(decoded) == 4
    assert decoded[0].rgb.shape == (76, 102, 3)
    diff = np.abs(decoded[0].rgb[:75, :101].astype(np.int16) - crops[0].astype(np.int16)).mean()
    assert diff < 8.0, diff


def test_missing_encoder_falls_back_to_mpeg4_with_warning(
    tmp_path: Path, dog_frames: list[np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    out_path = tmp_path / "fallback.mp4"
    with caplog.at_level(logging.WARNING, logger="vos_service.io.overlay"):
        writer = VideoWriter(out_path, fps=30, codec="no_such_encoder")
    assert writer.codec == "mpeg4"
    assert any("no_such_encoder" in r.getMessage() for r in caplog.records)
    with writer:
        for rgb in dog_frames[:3]:
            writer.write(rgb)

    assert probe_video(out_path).codec == "mpeg4"
    decoded = list(iter_video_frames(out_path))
    assert len(decoded) == 3
    diff = np.abs(decoded[0].rgb.astype(np.int16) - dog_frames[0].astype(np.int16)).mean()
    assert diff < 8.0, diff


def test_frame_size_must_not_change(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "x.mp4", fps=10) as writer:
        writer.write(np.zeros((32, 32, 3), np.uint8))
        with pytest.raises(ValueError):
            writer.write(np.zeros((32, 34, 3), np.uint8))
