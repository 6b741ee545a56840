"""Draw masklets on frames and write the result as an MP4, for eyeballing runs.

``draw_overlay`` tints each object's pixels, outlines it and labels it with
its id; ``VideoWriter`` turns a sequence of such frames into an H.264 file
that any browser or player opens.
"""

from __future__ import annotations

import colorsys
import logging
import os
from collections.abc import Sequence
from fractions import Fraction

import av
import cv2
import numpy as np

from vos_service.io.closing import ClosingContext
from vos_service.io.rle import mask_bbox

__all__ = ["VideoWriter", "draw_overlay", "object_color"]

logger = logging.getLogger(__name__)

# Hue step of 1/golden ratio: consecutive ids land far apart on the colour
# wheel and no id ever repeats a neighbour's colour, however many objects.
_GOLDEN_RATIO_CONJUGATE = 0.6180339887498949


def object_color(obj_id: int) -> tuple[int, int, int]:
    """A stable, bright RGB colour for an object id (same id → same colour, any process)."""
    hue = (obj_id * _GOLDEN_RATIO_CONJUGATE) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def _draw_label(image: np.ndarray, text: str, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> None:
    """Id tag in the object's colour at the top-left corner of its box, kept inside the image."""
    h, w = image.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.4, min(h, w) / 720 * 0.7)  # readable at 720p, not huge on small frames
    thickness = max(1, int(round(scale * 2)))
    (tw, th), baseline = cv2.getTextSize(text, font, scale, thickness)
    pad = 2
    x0 = min(max(box[0], 0), max(w - tw - 2 * pad, 0))
    y0 = min(max(box[1], 0), max(h - th - baseline - 2 * pad, 0))
    cv2.rectangle(image, (x0, y0), (x0 + tw + 2 * pad, y0 + th + baseline + 2 * pad), color, thickness=-1)
    cv2.putText(image, text, (x0 + pad, y0 + pad + th), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)


def draw_overlay(
    rgb: np.ndarray,
    masks: Sequence[tuple[int, np.ndarray]],
    alpha: float = 0.5,
    *,
    contour_thickness: int = 2,
    label: bool = True,
) -> np.ndarray:
    """Return a copy of ``rgb`` with each object's mask tinted, outlined and labelled.

    Args:
        rgb: (H, W, 3) uint8 RGB frame; not modified.
        masks: ``(obj_id, mask)`` pairs, mask (H, W) bool. Later pairs are
            drawn over earlier ones where masks overlap.
        alpha: tint opacity in [0, 1]; 0 leaves mask pixels unchanged.
        contour_thickness: outline width in pixels; 0 draws none.
        label: draw the object id at the top-left of its box.

    Returns:
        (H, W, 3) uint8 RGB. The outline straddles the mask border and the
        label sits at the box corner, so both may touch a few pixels just
        outside the mask; with ``contour_thickness=0, label=False`` only
        mask pixels change.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = np.ascontiguousarray(rgb).copy()
    h, w = out.shape[:2]

    # Tint every object before any outline or label, so a later object's
    # tint never washes out an earlier object's outline.
    drawn: list[tuple[int, np.ndarray, tuple[int, int, int]]] = []
    for obj_id, mask in masks:
        mask = np.asarray(mask)
        if mask.shape != (h, w):
            raise ValueError(f"mask of object {obj_id} is {mask.shape}, frame is {(h, w)}")
        mask = mask.astype(bool, copy=False)
        color = object_color(obj_id)
        if alpha > 0:
            tinted = out[mask].astype(np.float32) * (1.0 - alpha) + np.asarray(color, np.float32) * alpha
            out[mask] = np.clip(np.rint(tinted), 0, 255).astype(np.uint8)
        drawn.append((obj_id, mask, color))

    for obj_id, mask, color in drawn:
        if contour_thickness > 0:
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, color, contour_thickness, cv2.LINE_AA)
        if label:
            box = mask_bbox(mask)
            if box is not None:
                _draw_label(out, str(obj_id), box, color)
    return out


def _pick_codec(codec: str) -> str:
    """``codec`` if this FFmpeg build can encode it, else mpeg4 (always built in)."""
    try:
        av.codec.Codec(codec, "w")
        return codec
    except ValueError:  # PyAV's UnknownCodecError subclasses ValueError
        pass
    logger.warning(
        "encoder %r is not available in this FFmpeg build; writing MPEG-4 Part 2 instead "
        "(larger files, not playable in every browser)",
        codec,
    )
    return "mpeg4"


class VideoWriter(ClosingContext):
    """Write RGB frames to an MP4 at a fixed frame rate.

    H.264 (libx264, yuv420p) by default; falls back to MPEG-4 Part 2 with a
    warning where libx264 is not compiled in. The stream is created on the
    first frame, whose size fixes the video size. yuv420p subsamples chroma
    2x2, so odd widths/heights are padded by one pixel (edge pixels
    repeated): the file is then (H + H%2, W + W%2).

    Usage::

        with VideoWriter("out.mp4", fps=info.fps) as writer:
            for frame in frames:
                writer.write(draw_overlay(frame.rgb, masks))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float | Fraction,
        *,
        codec: str = "libx264",
        crf: int = 20,
        preset: str = "veryfast",
    ) -> None:
        """
        Args:
            path: output file; the container format follows its extension.
            fps: frames per second, e.g. 30000/1001 (floats are snapped to
                the nearest fraction with denominator <= 1001, which is exact
                for NTSC rates).
            codec: preferred encoder.
            crf: x264 constant rate factor (lower = better, 18 ≈ visually lossless).
            preset: x264 speed/size trade-off.
        """
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.path = os.fspath(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.codec = _pick_codec(codec)
        self._crf = crf
        self._preset = preset
        self._container: av.container.OutputContainer | None = av.open(self.path, mode="w")
        self._stream: av.video.stream.VideoStream | None = None
        self._input_size: tuple[int, int] | None = None  # (H, W) of the frames given
        self.frames_written = 0

    @property
    def size(self) -> tuple[int, int] | None:
        """(height, width) of the encoded video, None before the first frame."""
        if self._stream is None:
            return None
        return self._stream.height, self._stream.width

    def _add_stream(self, height: int, width: int) -> av.video.stream.VideoStream:
        assert self._container is not None  # write() refuses a closed writer first
        stream = self._container.add_stream(self.codec, rate=self.fps)
        if not isinstance(stream, av.video.stream.VideoStream):
            raise ValueError(f"{self.codec!r} is not a video codec")
        stream.height = height + height % 2
        stream.width = width + width % 2
        stream.pix_fmt = "yuv420p"
        if self.codec == "libx264":
            stream.options = {"crf": str(self._crf), "preset": self._preset}
        else:
            # mpeg4's default ~200 kb/s turns 720p into mush; ~0.15 bit/pixel
            # keeps overlays legible.
            stream.bit_rate = int(stream.width * stream.height * float(self.fps) * 0.15)
        return stream

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame; every frame must have the first frame's size."""
        if self._container is None:
            raise RuntimeError("VideoWriter is closed")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        if self._stream is None:
            self._stream = self._add_stream(h, w)
            self._input_size = (h, w)
        elif (h, w) != self._input_size:
            raise ValueError(f"frame is {(h, w)}, video is {self._input_size}")
        if h % 2 or w % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        # PyAV stamps pts 0, 1, 2 … in 1/fps units when none is set.
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file. Safe to call twice."""
        if self._container is None:
            return
        try:
            if self._stream is not None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
