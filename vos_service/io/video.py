"""Decode video files, URLs and cameras into RGB frames with PyAV.

Everything PyAV can open works here: local files, ``http(s)://`` and
``rtsp://`` URLs, and capture devices (``format="v4l2"`` with
``/dev/video0``, ``format="avfoundation"`` …). Callers get plain numpy
frames and never touch PyAV objects.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

__all__ = ["VideoFrame", "VideoInfo", "iter_video_frames", "probe_video"]


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame.

    ``index`` counts decoded frames from the start of the stream (0-based),
    frames skipped by ``start=`` included, so it is stable whatever slice of
    the video was asked for.
    """

    index: int
    pts_seconds: float | None  # presentation time in seconds; None if the container has no timestamps
    rgb: np.ndarray  # (H, W, 3) uint8, RGB, C-contiguous


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about its first video stream."""

    width: int  # pixels
    height: int  # pixels
    fps: float | None  # frames per second; None if the stream declares no rate
    num_frames: int | None  # None when the header does not say (live streams, some containers)
    codec: str  # decoder name, e.g. "h264"


def _open_options(path_or_url: str, options: Mapping[str, str] | None) -> dict[str, str]:
    """Default demuxer options by URL scheme; explicit ``options`` win."""
    merged: dict[str, str] = {}
    if path_or_url.startswith(("rtsp://", "rtsps://")):
        # UDP drops packets on any lossy network and H.264 then smears grey
        # blocks until the next keyframe; TCP costs a little latency only.
        merged["rtsp_transport"] = "tcp"
    if options:
        merged.update(options)
    return merged


def _open(
    path_or_url: str | os.PathLike[str],
    format: str | None,
    options: Mapping[str, str] | None,
) -> av.container.InputContainer:
    path = os.fspath(path_or_url)
    return av.open(path, mode="r", format=format, options=_open_options(path, options))


def _first_video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise ValueError(f"{path}: no video stream")
    return container.streams.video[0]


def iter_video_frames(
    path_or_url: str | os.PathLike[str],
    *,
    max_frames: int | None = None,
    start: int = 0,
    format: str | None = None,
    options: Mapping[str, str] | None = None,
) -> Iterator[VideoFrame]:
    """Yield the frames of the first video stream as RGB arrays.

    Args:
        path_or_url: file path, URL, or device name understood by FFmpeg.
        max_frames: stop after yielding this many frames (None = until EOF).
        start: skip this many frames first. They are decoded and dropped
            rather than sought to: seeking lands on keyframes only, and live
            sources cannot seek at all.
        format: force an FFmpeg input format (e.g. "v4l2" for a webcam).
        options: extra demuxer options, e.g. ``{"rtsp_transport": "udp"}``.

    The container is closed when the iterator is exhausted or closed, so
    ``break`` out of a loop is safe.
    """
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0 or None, got {max_frames}")
    if max_frames == 0:
        return

    yielded = 0
    with _open(path_or_url, format, options) as container:
        stream = _first_video_stream(container, os.fspath(path_or_url))
        # Frame-level threading keeps 720p H.264 decode well above real time
        # on a few cores; AUTO picks slice threads where frame threads can't.
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index < start:
                continue
            yield VideoFrame(
                index=index,
                pts_seconds=None if frame.pts is None else float(frame.time),
                rgb=np.ascontiguousarray(frame.to_ndarray(format="rgb24")),
            )
            yielded += 1
            if max_frames is not None and yielded >= max_frames:
                return


def _fps(stream: av.video.stream.VideoStream) -> float | None:
    rate: Fraction | None = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None


def probe_video(
    path_or_url: str | os.PathLike[str],
    *,
    format: str | None = None,
    options: Mapping[str, str] | None = None,
) -> VideoInfo:
    """Read stream metadata without decoding any frame.

    ``num_frames`` is the header's count. Some containers do not store it;
    we return None then instead of guessing from duration × fps, which is
    off for variable-frame-rate files.
    """
    with _open(path_or_url, format, options) as container:
        stream = _first_video_stream(container, os.fspath(path_or_url))
        ctx = stream.codec_context
        return VideoInfo(
            width=int(ctx.width),
            height=int(ctx.height),
            fps=_fps(stream),
            num_frames=int(stream.frames) if stream.frames else None,
            codec=ctx.name,
        )
