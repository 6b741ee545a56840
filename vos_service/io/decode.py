"""Decode the bytes of one streamed frame to an RGB image.

One ``FrameDecoder`` per stream: it knows the stream's announced size and
format, checks every frame against them, and for H.264 keeps the stateful
decoder that consecutive access units need (reference frames, SPS/PPS).

H.264 is fed as Annex-B access units, one per call. A decoder may hold
frames back before it outputs the first one (B-frames reorder, some
encoders lag): ``decode`` then returns ``None`` — there is no frame to
enqueue *yet*, the caller simply goes on with the next access unit. After
that delay one frame comes out per access unit (surplus frames wait here),
and ``flush`` returns those still held when the stream ends. Frames come out
in presentation order, which with B-frames is not the order the access units
went in: a caller numbering frames numbers them as they come out (api/ gives
the n-th frame out the index of the n-th access unit sent).

Decoders allocate for the size a header declares before the data can disappoint
them (a 33 KB PNG declaring 16384x16384 cost cv2 1.5 GB), so the declared size is
read first (io.headers for PNG/JPEG, io.h264_sps for every SPS of an access unit)
and a frame declaring anything but the stream's size never reaches cv2 or PyAV.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Optional

import av
import cv2
from av.video.codeccontext import VideoCodecContext
import numpy as np

from .h264_sps import SpsError, sps_sizes
from .headers import HeaderError, jpeg_size, png_size

__all__ = ["FrameDecodeError", "FrameDecoder", "FrameFormat"]


class FrameDecodeError(ValueError):
    """The bytes are not a frame of this stream (empty, corrupt, wrong size or format)."""


class FrameFormat(str, enum.Enum):
    JPEG = "jpeg"
    PNG = "png"
    RGB = "rgb"  # raw (H, W, 3) uint8, row-major
    BGR = "bgr"
    H264 = "h264"  # Annex-B access units


class FrameDecoder:
    """Bytes -> (H, W, 3) uint8 RGB for one stream of `width` x `height` frames.

    Not thread-safe; a stream decodes its frames one after another (the H.264
    state depends on their order).
    """

    def __init__(self, format: FrameFormat | str, width: int, height: int) -> None:
        self.format = FrameFormat(format)
        if width <= 0 or height <= 0:
            raise FrameDecodeError(f"frame size must be positive, got {width}x{height}")
        self.width = int(width)
        self.height = int(height)
        self._h264: Optional[VideoCodecContext] = None
        self._held: deque[np.ndarray] = deque()  # H.264 frames decoded but not yet returned
        if self.format is FrameFormat.H264:
            self._h264 = av.CodecContext.create("h264", "r")
            # Slice threads only: frame threading would hold back one frame per thread.
            self._h264.thread_type = "SLICE"

    def decode(self, data: bytes, width: Optional[int] = None, height: Optional[int] = None
               ) -> Optional[np.ndarray]:
        """Decode one frame. `width`/`height` may restate the size (raw formats must match it).

        Returns (H, W, 3) uint8 RGB, C-contiguous; for H.264 None while the
        decoder holds frames back. Raises FrameDecodeError.
        """
        if not data:
            raise FrameDecodeError("empty frame data")
        if (width is not None and width != self.width) or (height is not None and height != self.height):
            raise FrameDecodeError(f"frame says {width}x{height}, the stream is {self.width}x{self.height}")
        fmt = self.format
        if fmt is FrameFormat.H264:
            return self._decode_h264(bytes(data))
        if fmt in (FrameFormat.RGB, FrameFormat.BGR):
            expected = self.width * self.height * 3
            if len(data) != expected:
                raise FrameDecodeError(f"raw {fmt.value} frame has {len(data)} bytes, "
                                       f"{self.width}x{self.height}x3 needs {expected}")
            img = np.frombuffer(data, np.uint8).reshape(self.height, self.width, 3)
            # frombuffer is read-only and aliases the message: copy, converting BGR on the way.
            return np.ascontiguousarray(img[..., ::-1]) if fmt is FrameFormat.BGR else img.copy()
        return self._check(self._decode_image(data))

    def flush(self) -> list[np.ndarray]:
        """The frames an H.264 decoder still holds, in order; [] for other formats.

        Call once, when the stream ends: the decoder takes no input afterwards.
        """
        if self._h264 is None:
            return []
        try:
            frames = self._h264.decode(None)
        except av.error.FFmpegError as e:
            raise FrameDecodeError(f"h264 flush failed: {e}") from e
        self._held.extend(self._check(f.to_ndarray(format="rgb24")) for f in frames)
        out = list(self._held)
        self._held.clear()
        return out

    @property
    def held(self) -> int:
        """Frames decoded but not returned yet (H.264 output surplus)."""
        return len(self._held)

    # ---- formats -------------------------------------------------------------

    def _decode_image(self, data: bytes) -> np.ndarray:
        buf = np.frombuffer(data, np.uint8)
        # A PNG must not be accepted on a JPEG stream (and vice versa): check the magic.
        magic = b"\xff\xd8\xff" if self.format is FrameFormat.JPEG else b"\x89PNG\r\n\x1a\n"
        if not bytes(data[:len(magic)]) == magic:
            raise FrameDecodeError(f"not a {self.format.value.upper()} image (bad signature)")
        self._check_header(data)
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # always 3 channels (grey and alpha converted)
        if bgr is None:
            raise FrameDecodeError(f"corrupt {self.format.value.upper()} image ({len(data)} bytes)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _check_header(self, data: bytes) -> None:
        """Refuse an image whose header declares another size, before cv2 allocates for it."""
        name = self.format.value.upper()
        try:
            w, h = png_size(data) if self.format is FrameFormat.PNG else jpeg_size(data)
        except HeaderError as e:
            raise FrameDecodeError(f"corrupt {name} image: {e}") from e
        # cv2 applies EXIF orientation, so a portrait photo declaring W x H decodes to H x W:
        # let the transpose through (same pixel count, so the same allocation); _check then
        # compares the decoded frame exactly.
        if (w, h) != (self.width, self.height) and (h, w) != (self.width, self.height):
            raise FrameDecodeError(f"{name} header declares {w}x{h}, the stream is {self.width}x{self.height}")

    def _check_sps(self, data: bytes) -> None:
        """Refuse an access unit with an SPS of another size, before FFmpeg allocates for it.

        Access units without an SPS pass: the decoder keeps using the SPS checked earlier.
        """
        try:
            sizes = sps_sizes(data)
        except SpsError as e:
            raise FrameDecodeError(f"h264 access unit refused: {e}") from e
        for s in sizes:
            if (s.width, s.height) != (self.width, self.height):
                raise FrameDecodeError(f"h264 SPS {s.sps_id} declares {s.width}x{s.height}, "
                                       f"the stream is {self.width}x{self.height}")

    def _decode_h264(self, data: bytes) -> Optional[np.ndarray]:
        assert self._h264 is not None  # created with the decoder for the H264 format
        self._check_sps(data)
        try:
            frames = self._h264.decode(av.Packet(data))
        except av.error.FFmpegError as e:
            raise FrameDecodeError(f"h264 access unit ({len(data)} bytes) does not decode: {e}") from e
        # Convert and size-check every frame out; keep the surplus for the next calls so that
        # one access unit in gives (after the initial delay) one frame out.
        self._held.extend(self._check(f.to_ndarray(format="rgb24")) for f in frames)
        return self._held.popleft() if self._held else None

    def _check(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        if (w, h) != (self.width, self.height):
            raise FrameDecodeError(f"decoded frame is {w}x{h}, the stream is {self.width}x{self.height}")
        return np.ascontiguousarray(rgb)
