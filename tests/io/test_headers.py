"""Declared sizes read before decoding: PNG IHDR, JPEG SOFn, hand-made H.264 SPS.

The SPS parser against x264 and FFmpeg: test_decode.py."""

from __future__ import annotations

import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from vos_service.io.h264_sps import SpsError, parse_sps, sps_sizes, unescape_rbsp
from vos_service.io.headers import HeaderError, jpeg_size, png_size

# ---- PNG ---------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 16384, height: int = 16384) -> bytes:
    """A 1-bit grey PNG header declaring width x height, with one tiny row of IDAT (~100 bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + (width + 7) // 8), 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def encode(ext: str, img: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("w, h", [(1, 1), (320, 180), (181, 77)])
def test_png_size_of_real_pngs(w, h):
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)
    assert png_size(encode(".png", img)) == (w, h)
    assert png_size(bytearray(encode(".png", img[..., 0]))) == (w, h)  # grey, and a bytearray


def test_png_bomb_header_is_read_without_decoding():
    data = png_bomb()
    assert len(data) < 200 and png_size(data) == (16384, 16384)


def test_png_malformed_headers():
    good = png_bomb(32, 16)
    for n in (8, 16, 24, 32):
        with pytest.raises(HeaderError, match="truncated"):
            png_size(good[:n])
    text_first = good[:8] + png_chunk(b"tEXt", b"k\x00v") + good[8:]
    with pytest.raises(HeaderError, match="not IHDR"):
        png_size(text_first)
    with pytest.raises(HeaderError, match="length 14"):
        png_size(good[:8] + png_chunk(b"IHDR", struct.pack(">IIBBBBBB", 32, 16, 8, 0, 0, 0, 0, 0)) + good[33:])
    with pytest.raises(HeaderError, match="signature"):
        png_size(b"GIF89a" + good[6:])


# ---- JPEG --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jpg() -> bytes:
    img = np.random.default_rng(1).integers(0, 255, (180, 320, 3), np.uint8)
    return encode(".jpg", img)


@pytest.mark.parametrize("w, h", [(1, 1), (320, 180), (181, 77), (1280, 720)])
@pytest.mark.parametrize("params", [(), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), (cv2.IMWRITE_JPEG_RST_INTERVAL, 2),
                                    (cv2.IMWRITE_JPEG_OPTIMIZE, 1)])
def test_jpeg_size_of_real_jpegs(w, h, params):
    img = np.random.default_rng(2).integers(0, 255, (h, w, 3), np.uint8)
    assert jpeg_size(encode(".jpg", img, *params)) == (w, h)
    assert jpeg_size(memoryview(encode(".jpg", img[..., 0], *params))) == (w, h)  # grey, a memoryview


def sof_at(data: bytes) -> int:
    i = data.find(b"\xff\xc0")
    assert i > 0
    return i


def patch_sof(data: bytes, w: int, h: int) -> bytes:
    i = sof_at(data)
    return data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:]


def test_jpeg_sof_patched_to_a_bomb(jpg):
    assert jpeg_size(patch_sof(jpg, 16384, 16384)) == (16384, 16384)


def test_jpeg_fill_bytes_and_standalone_markers(jpg):
    i = sof_at(jpg)
    padded = jpg[:i] + b"\xff" * 1000 + b"\xff\xd0\xff\x01" + jpg[i:]
    assert jpeg_size(padded) == (320, 180)


def test_every_truncation_of_the_header_is_refused(jpg):
    sos = jpg.find(b"\xff\xda")
    for n in range(2, sos + 1):
        with pytest.raises(HeaderError):
            jpeg_size(jpg[:n])
    assert jpeg_size(jpg[:sos + 2]) == (320, 180)  # SOS reached: the frame header is complete


def test_jpeg_malformed_headers(jpg):
    i, sos = sof_at(jpg), jpg.find(b"\xff\xda")
    sof = jpg[i:i + 2 + int.from_bytes(jpg[i + 2:i + 4], "big")]
    cases = {
        "SOI marker": b"\x00" + jpg[1:],
        "not a marker": jpg[:i] + b"\x12" + jpg[i:],
        "before a frame header": jpg[:2] + b"\xff\xd9" + jpg[2:],  # EOI first
        "before the first scan": jpg[:i] + jpg[sos:],  # SOS with no SOF
        "more than one frame header": jpg[:i] + sof + jpg[i:],
        "too short": jpg[:i] + b"\xff\xc2\x00\x05\x08\x00\xb4" + jpg[i:],
        "declares 65535 bytes": jpg[:i] + b"\xff\xe1\xff\xff" + b"exif",
        "declares 1 bytes": jpg[:i] + b"\xff\xe1\x00\x01" + jpg[i:],
        "segments": jpg[:2] + b"\xff\xd0" * 5000 + jpg[2:],
        "fill bytes": jpg[:2] + b"\xff" * 10,
    }
    for match, data in cases.items():
        with pytest.raises(HeaderError, match=match):
            jpeg_size(data)


def test_jpeg_walk_is_linear(jpg):
    i = sof_at(jpg)
    com = b"\xff\xfe\xff\xff" + b"c" * 65533  # 64 KB comment segments
    big = jpg[:i] + com * 64 + b"\xff" * 2_000_000 + jpg[i:]
    t0 = time.perf_counter()
    assert jpeg_size(big) == (320, 180)
    with pytest.raises(HeaderError):
        jpeg_size(big[:i + len(com) * 64 + 2_000_000])  # ends in fill bytes
    assert time.perf_counter() - t0 < 1.0  # milliseconds; generous for a busy machine


# ---- H.264: a bit writer for hand-made SPS -------------------------------------------------


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, v: int) -> BitWriter:
        self.bits += [(v >> (n - 1 - i)) & 1 for i in range(n)]
        return self

    def ue(self, v: int) -> BitWriter:
        n = (v + 1).bit_length()
        return self.u(n - 1, 0).u(n, v + 1)

    def se(self, v: int) -> BitWriter:
        return self.ue(2 * v - 1 if v > 0 else -2 * v)

    def rbsp(self) -> bytes:
        """The bits, then rbsp_trailing_bits (a 1, zeros to the byte)."""
        return bits_to_bytes(self.bits + [1])


def bits_to_bytes(bits: list[int]) -> bytes:
    bits = bits + [0] * (-len(bits) % 8)
    return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def escape(rbsp: bytes) -> bytes:
    """RBSP -> NAL payload: a 0x03 after every 00 00 that precedes a byte <= 3 (7.4.1)."""
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def sps_nal(rbsp: bytes, header: int = 0x67) -> bytes:
    return b"\x00\x00\x00\x01" + bytes([header]) + escape(rbsp)


def make_sps(width_mbs: int, map_units: int, *, crop=(0, 0, 0, 0), profile: int = 66, chroma: int = 1,
             frame_mbs_only: int = 1, poc1_offsets: list[int] | None = None, sps_id: int = 0,
             tail: BitWriter | None = None) -> bytes:
    """An SPS RBSP with the given geometry (log2_max_frame_num 4, POC type 2 unless offsets given)."""
    w = BitWriter().u(8, profile).u(8, 0).u(8, 40).ue(sps_id)
    if profile in (100, 110, 122, 244):
        w.ue(chroma)
        if chroma == 3:
            w.u(1, 0)  # separate_colour_plane_flag
        w.ue(0).ue(0).u(1, 0).u(1, 0)  # bit depths 8, no bypass, no scaling matrices
    w.ue(0)  # log2_max_frame_num_minus4
    if poc1_offsets is None:
        w.ue(2)
    else:
        w.ue(1).u(1, 0).se(poc1_offsets[0]).se(poc1_offsets[1]).ue(0)
    w.ue(1).u(1, 0).ue(width_mbs - 1).ue(map_units - 1).u(1, frame_mbs_only)
    if not frame_mbs_only:
        w.u(1, 0)
    w.u(1, 1)  # direct_8x8_inference_flag
    if any(crop):
        w.u(1, 1)
        for c in crop:
            w.ue(c)
    else:
        w.u(1, 0)
    w.bits += (tail or BitWriter().u(1, 0)).bits  # VUI (absent unless given)
    return w.rbsp()


def only_size(au: bytes) -> tuple[int, int]:
    (s,) = sps_sizes(au)
    return s.width, s.height


def test_hand_made_geometry_and_crop_units():
    assert parse_sps(make_sps(20, 12)).width == 320
    assert only_size(sps_nal(make_sps(40, 23, crop=(0, 0, 0, 4)))) == (640, 360)  # 4:2:0: 2 rows a unit
    assert only_size(sps_nal(make_sps(120, 68, crop=(0, 0, 0, 4)))) == (1920, 1080)
    assert only_size(sps_nal(make_sps(120, 68, crop=(0, 0, 0, 8), profile=100, chroma=2))) == (1920, 1080)
    assert only_size(sps_nal(make_sps(16, 9, crop=(1, 2, 3, 4), profile=244, chroma=3))) == (253, 137)
    assert only_size(sps_nal(make_sps(16, 9, crop=(1, 2, 3, 4), profile=100, chroma=0))) == (253, 137)
    # field coding: a map unit is a pair of macroblock rows, a crop unit twice the rows
    assert only_size(sps_nal(make_sps(120, 34, crop=(0, 0, 0, 2), frame_mbs_only=0))) == (1920, 1080)
    s = parse_sps(make_sps(16, 9, crop=(3, 0, 0, 7)))
    assert (s.width, s.height, s.coded_width, s.coded_height) == (250, 130, 256, 144)
    assert parse_sps(make_sps(20, 12, crop=(0, 31, 0, 31))).width == 258  # 62 px of crop: still allowed


@pytest.mark.parametrize("rbsp, match", [
    (make_sps(1024, 1024), "larger than any level"),  # 16384x16384
    (make_sps(1056, 10), "over 1054"),
    (make_sps(2**20, 10), "over 1054"),
    (make_sps(128, 128, crop=(0, 864, 0, 934)), "far larger"),  # 2048x2048 cropped to 320x180
    (make_sps(20, 12, crop=(0, 160, 0, 0)), "leaves nothing"),
    (make_sps(20, 12, sps_id=32), "seq_parameter_set_id = 32"),
    (make_sps(20, 12, profile=144), "profile_idc 144"),
    (make_sps(20, 12, profile=139), "profile_idc 139"),
    (make_sps(20, 12, profile=100, chroma=4), "chroma_format_idc = 4"),
    (BitWriter().u(24, 0x42C028).u(40, 0).rbsp(), "over 32 bits"),
    (b"\x42\xc0", "truncated"),
])
def test_hand_made_refusals(rbsp, match):
    with pytest.raises(SpsError, match=match):
        sps_sizes(sps_nal(rbsp))


def test_every_truncation_of_an_sps_is_refused():
    rbsp = make_sps(40, 23, crop=(0, 0, 0, 4), profile=100)
    needed = len(rbsp) - 1  # the last byte holds the VUI flag and the stop bit
    for n in range(needed):
        with pytest.raises(SpsError):
            sps_sizes(sps_nal(rbsp[:n]) + b"\x00\x00\x01\x68\xce")  # a PPS follows
    assert only_size(sps_nal(rbsp)) == (640, 360)


def test_emulation_prevention():
    assert unescape_rbsp(b"\x00\x00\x03\x00\x00\x03\x01\x00\x00\x00\x03") == b"\x00\x00\x00\x00\x01\x00\x00\x00"
    # after the fields (here a VUI with timing info 00 00 00 01): read the same both ways
    vui = BitWriter().u(1, 1).u(4, 0).u(1, 1).u(32, 1).u(32, 60).u(1, 1).u(4, 0)
    nal = sps_nal(make_sps(40, 23, crop=(0, 0, 0, 4), tail=vui))
    assert b"\x00\x00\x03" in nal and only_size(nal) == (640, 360)
    # inside the fields (huge POC offsets, 31 leading zero bits): FFmpeg may read it twice
    nal = sps_nal(make_sps(40, 23, crop=(0, 0, 0, 4), poc1_offsets=[-(2**30), 2**30]))
    assert b"\x00\x00\x03" in nal
    with pytest.raises(SpsError, match="emulation-prevention"):
        sps_sizes(nal)


def test_access_units_without_sps_and_many_sps():
    assert sps_sizes(b"\x00\x00\x00\x01\x65" + bytes(range(1, 200))) == []
    assert sps_sizes(b"") == []
    one = sps_nal(make_sps(20, 12))
    assert [s.width for s in sps_sizes(one + b"\x00\x00\x01\x6f" + make_sps(40, 23))] == [320, 640]  # + subset
    with pytest.raises(SpsError, match="more than 32"):
        sps_sizes(one * 33)
