from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vos_service.io.video import _open_options, iter_video_frames, probe_video

NTSC_FPS = 30000 / 1001
# Frame counts from the data folder's README (and the MP4 headers).
CLIP_FRAMES = {"01_dog.mp4": 289, "02_cups.mp4": 300, "03_blocks.mp4": 292, "04_coffee.mp4": 287}


@pytest.mark.parametrize("name", sorted(CLIP_FRAMES))
def test_probe_video_reads_header(video_dir: Path, name: str) -> None:
    info = probe_video(video_dir / name)
    assert (info.width, info.height) == (1280, 720)
    assert info.fps == pytest.approx(NTSC_FPS, abs=1e-6)
    assert info.num_frames == CLIP_FRAMES[name]
    assert info.codec == "h264"


def test_first_frames_shape_dtype_and_timestamps(dog_clip: Path) -> None:
    info = probe_video(dog_clip)
    frames = list(iter_video_frames(dog_clip, max_frames=8))

    assert [f.index for f in frames] == list(range(8))
    for f in frames:
        assert f.rgb.shape == (info.height, info.width, 3)
        assert f.rgb.dtype == np.uint8
        assert f.rgb.flags.c_contiguous
    pts = np.array([f.pts_seconds for f in frames])
    np.testing.assert_allclose(np.diff(pts), 1 / info.fps, rtol=1e-3)
    # A real picture, not a blank buffer.
    assert frames[0].rgb.std() > 10


def test_decodes_every_frame_the_header_counts(dog_clip: Path) -> None:
    count = sum(1 for _ in iter_video_frames(dog_clip))
    assert count == probe_video(dog_clip).num_frames


def test_start_skips_frames_and_keeps_absolute_index(dog_clip: Path, dog_frames: list[np.ndarray]) -> None:
    frames = list(iter_video_frames(dog_clip, start=5, max_frames=3))
    assert [f.index for f in frames] == [5, 6, 7]
    for f in frames:
        np.testing.assert_array_equal(f.rgb, dog_frames[f.index])


def test_max_frames_zero_and_bad_arguments(dog_clip: Path) -> None:
    assert list(iter_video_frames(dog_clip, max_frames=0)) == []
    with pytest.raises(ValueError):
        list(iter_video_frames(dog_clip, start=-1))
    with pytest.raises(ValueError):
        list(iter_video_frames(dog_clip, max_frames=-1))


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(iter_video_frames(tmp_path / "nope.mp4", max_frames=1))
    with pytest.raises(FileNotFoundError):
        probe_video(tmp_path / "nope.mp4")


def test_rtsp_defaults_to_tcp_and_caller_options_win() -> None:
    assert _open_options("rtsp://cam/1", None) == {"rtsp_transport": "tcp"}
    assert _open_options("rtsp://cam/1", {"rtsp_transport": "udp"}) == {"rtsp_transport": "udp"}
    assert _open_options("/data/clip.mp4", None) == {}
