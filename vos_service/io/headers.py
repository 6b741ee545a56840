"""The frame size a PNG or JPEG declares, read from its header before any decoder runs.

A decoder allocates for the size the header declares before it finds out whether the
rest of the data backs it: a 33 KB 1-bit PNG declaring 16384x16384 made cv2.imdecode
allocate 1.5 GB. Reading the declared size first, in Python and bounded by the data's
length, lets the caller refuse such an image for the price of a few bytes.

These readers are strict (they refuse some files a lenient decoder would still open):
they only have to be right about every file they accept, never the other way round.
"""

from __future__ import annotations

import re
from typing import Union

__all__ = ["HeaderError", "PNG_SIGNATURE", "jpeg_size", "png_size"]

Buffer = Union[bytes, bytearray, memoryview]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class HeaderError(ValueError):
    """The image header is missing, truncated or malformed."""


def _be(data: Buffer, at: int, n: int) -> int:
    return int.from_bytes(data[at:at + n], "big")


def png_size(data: Buffer) -> tuple[int, int]:
    """``(width, height)`` in pixels from a PNG's IHDR chunk.

    PNG requires IHDR to be the first chunk (libpng refuses anything else), so its
    width and height are big-endian uint32 at bytes 16..24, right after the signature
    (8 bytes) and the chunk's length and type (4 + 4).
    """
    if bytes(data[:8]) != PNG_SIGNATURE:
        raise HeaderError("no PNG signature")
    if len(data) < 8 + 8 + 13 + 4:  # signature, length + type, IHDR data, CRC
        raise HeaderError(f"truncated: {len(data)} bytes, too short for the IHDR chunk")
    if bytes(data[12:16]) != b"IHDR":
        raise HeaderError(f"the first chunk is {bytes(data[12:16])!r}, not IHDR")
    if _be(data, 8, 4) != 13:
        raise HeaderError(f"IHDR has length {_be(data, 8, 4)}, not 13")
    return _be(data, 16, 4), _be(data, 20, 4)


# JPEG markers (ITU-T T.81 B.1.1.3, table B.1).
_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0..7: no length field
# SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG, reserved) and CC (DAC) share the range.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_NOT_FF = re.compile(rb"[^\xff]")
# Real files have a dozen segments before the first scan (APPn, DQT, SOF, DHT...); many
# thousands can only be an attempt to keep this loop busy.
MAX_JPEG_SEGMENTS = 1000


def jpeg_size(data: Buffer) -> tuple[int, int]:
    """``(width, height)`` in pixels from a JPEG's frame header (SOFn).

    Walks the marker segments after SOI up to the first SOS (start of scan), as libjpeg
    does before it allocates: each segment is ``FF <marker> <length: 2 bytes, itself
    included> <payload>``; 0xFF fill bytes may precede a marker; TEM and RSTn stand alone.
    A SOFn payload is precision (1 byte), height (2), width (2), components (1) ... .
    The walk jumps from segment to segment (linear in the number of segments, capped at
    `MAX_JPEG_SEGMENTS`) and refuses: data ending before SOS, a truncated segment, bytes
    that are not a marker where one must be, a second SOI, EOI or SOS before any SOF, and
    a second SOF (libjpeg refuses those too).
    """
    if bytes(data[:2]) != b"\xff\xd8":
        raise HeaderError("no JPEG SOI marker")
    n, pos, size = len(data), 2, None
    for _ in range(MAX_JPEG_SEGMENTS):
        if pos >= n:
            raise HeaderError("no frame header: the data ends before the first scan")
        if data[pos] != 0xFF:
            raise HeaderError(f"byte {pos} is 0x{data[pos]:02x}, not a marker")
        m = _NOT_FF.search(data, pos)  # skip the fill bytes in C, not byte by byte
        if m is None:
            raise HeaderError("no frame header: the data ends in fill bytes")
        marker, pos = data[m.start()], m.start() + 1
        if marker in _STANDALONE:
            continue
        if marker == _SOS:
            if size is None:
                raise HeaderError("no frame header before the first scan (SOS)")
            return size
        if marker in (_SOI, _EOI, 0x00):
            raise HeaderError(f"unexpected marker 0xff{marker:02x} at byte {pos - 2} before a frame header")
        if pos + 2 > n:
            raise HeaderError(f"truncated: marker 0xff{marker:02x} at byte {pos - 2} has no length")
        length = _be(data, pos, 2)
        if length < 2 or pos + length > n:
            raise HeaderError(f"truncated segment: marker 0xff{marker:02x} at byte {pos - 2} "
                              f"declares {length} bytes, {n - pos} remain")
        if marker in _SOF:
            if size is not None:
                raise HeaderError("more than one frame header (SOF)")
            if length < 8:
                raise HeaderError(f"frame header of {length} bytes, too short")
            size = (_be(data, pos + 5, 2), _be(data, pos + 3, 2))  # (X, Y): width, height
        pos += length
    raise HeaderError(f"more than {MAX_JPEG_SEGMENTS} segments before the first scan")
