"""The picture size an H.264 sequence parameter set declares, read before FFmpeg sees it.

FFmpeg sizes its frame pool from the SPS (NAL type 7), so a few bytes declaring
16384x16384 cost gigabytes before the first slice can fail. `sps_sizes` finds every SPS
of an Annex-B access unit, undoes the emulation prevention and reads
``seq_parameter_set_data()`` (ITU-T H.264 7.3.2.1.1) up to the frame cropping: the
displayed size is ``16 * PicWidthInMbs - crop`` by ``16 * FrameHeightInMbs - crop``.

The point is to agree with FFmpeg on every SPS accepted here, so it is strict where the
two could differ: profiles that FFmpeg and the standard read differently are refused, an
SPS is refused if its header fields contain an emulation-prevention byte and do not read
the same with it (FFmpeg retries a failing SPS on the raw bytes), every exp-Golomb value
is bounded where FFmpeg still reads it exactly, and the coded picture may exceed the
displayed one by less than `MAX_CROP` pixels (a huge picture cropped to a small one
would allocate like a huge one). NAL type 15 (subset SPS) starts with the same syntax
and newer FFmpeg parses it too, so it is checked the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_CROP", "MAX_FRAME_MBS", "MAX_SIDE_MBS", "SpsError", "SpsSize", "parse_sps", "sps_sizes",
           "unescape_rbsp"]


class SpsError(ValueError):
    """An SPS is truncated, malformed, out of bounds, or could be read in two ways."""


@dataclass(frozen=True)
class SpsSize:
    """What one SPS declares. Sizes in pixels."""

    sps_id: int
    profile_idc: int
    width: int  # displayed, after frame cropping
    height: int
    coded_width: int  # the macroblock grid the decoder allocates, before cropping
    coded_height: int


# profile_idc whose SPS carries chroma_format_idc, bit depths and scaling matrices, for the
# standard (7.3.2.1.1) and FFmpeg (h264_ps.c) alike.
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138})
# The standard reads 134, 135 and 139 like those, FFmpeg does not; FFmpeg reads 144 (the
# withdrawn High 4:4:4) like those, the standard does not: the same bits give two sizes.
_AMBIGUOUS_PROFILES = frozenset({134, 135, 139, 144})
# Level 6.2, the largest: MaxFS = 139264 macroblocks, and no side over sqrt(8 * MaxFS)
# (A.3.1 f/g). Nothing bigger is valid H.264; far below where FFmpeg misreads a ue(v).
MAX_FRAME_MBS = 139264
MAX_SIDE_MBS = 1055
# Pixels cropping may remove per direction: encoders crop the padding up to whole
# macroblocks (< 16, < 32 rows for field coding); this leaves room for odd encoders.
MAX_CROP = 64
_MAX_SPS_PER_AU = 32  # there are 32 SPS ids
# The fields up to the cropping fit in ~2.4 KB even with 12 scaling lists of 64 entries
# and 255 POC offsets of 32 bits; more bytes are never read.
_MAX_READ = 4096
_INT32 = (1 << 31) - 1

# A start code and a NAL header of type 7 or 15 (any nal_ref_idc / forbidden bit).
_SPS_HEADERS = bytes(high | kind for high in range(0, 256, 32) for kind in (7, 15))
_SPS_START = re.compile(rb"\x00\x00\x01[" + re.escape(_SPS_HEADERS) + rb"]")
# Where FFmpeg ends a NAL unit: the next 00 00 01 (start code) or 00 00 02.
_NAL_END = re.compile(rb"\x00\x00[\x01\x02]")


def unescape_rbsp(nal_payload: bytes) -> bytes:
    """NAL payload -> RBSP: drop the 0x03 of every 00 00 03 (emulation prevention, 7.4.1).

    Left to right and not overlapping, as FFmpeg does (h2645_parse.c).
    """
    return nal_payload.replace(b"\x00\x00\x03", b"\x00\x00")


def _rbsp_bits(rbsp: bytes) -> int:
    """Bits of SPS data in an RBSP: without trailing zero bytes, the stop bit and what follows it."""
    data = rbsp.rstrip(b"\x00")
    if not data:
        return 0
    last = data[-1]
    return len(data) * 8 - (last & -last).bit_length()


class _Bits:
    """MSB-first reader over at most `nbits` bits of `data`; reading past them is SpsError."""

    def __init__(self, data: bytes, nbits: int) -> None:
        # As a '0'/'1' string: a read is a slice, finding a code's leading zeros one str.find.
        self._bits = format(int.from_bytes(data, "big"), f"0{len(data) * 8}b") if data else ""
        self._nbits = min(nbits, len(self._bits))
        self.pos = 0

    def _truncated(self, needed: int) -> SpsError:
        return SpsError(f"truncated: the SPS has {self._nbits} bits, reading needs {needed}")

    def u(self, n: int) -> int:
        if self.pos + n > self._nbits:
            raise self._truncated(self.pos + n)
        v = int(self._bits[self.pos:self.pos + n], 2) if n else 0
        self.pos += n
        return v

    def ue(self, name: str, hi: int) -> int:
        """Exp-Golomb ue(v) (9.1): `zeros` 0s, a 1, `zeros` bits; refused above `hi`."""
        stop = min(self.pos + 32, self._nbits)
        one = self._bits.find("1", self.pos, stop)
        if one < 0:
            if stop < self.pos + 32:
                raise self._truncated(stop + 1)
            raise SpsError(f"{name}: an exp-Golomb code over 32 bits")
        zeros, self.pos = one - self.pos, one + 1
        v = (1 << zeros) - 1 + self.u(zeros)
        if v > hi:
            raise SpsError(f"{name} = {v}, over {hi}")
        return v

    def se(self, name: str, lo: int, hi: int) -> int:
        """Signed exp-Golomb se(v) (9.1.1), refused outside lo..hi."""
        k = self.ue(name, 0xFFFFFFFE)
        v = (k + 1) >> 1 if k & 1 else -(k >> 1)
        if not lo <= v <= hi:
            raise SpsError(f"{name} = {v}, outside {lo}..{hi}")
        return v


def _skip_scaling_list(b: _Bits, size: int) -> None:
    """scaling_list() (7.3.2.1.1.1): deltas until a scale of 0 ends the list early."""
    last = nxt = 8
    for _ in range(size):
        if nxt:
            nxt = (last + b.se("delta_scale", -128, 127)) & 0xFF
        last = nxt or last


def _parse(data: bytes, nbits: int) -> tuple[SpsSize, int]:
    """Read one SPS RBSP (without the NAL header byte) -> (its size, bits read)."""
    b = _Bits(data[:_MAX_READ], min(nbits, _MAX_READ * 8))
    profile = b.u(8)
    b.u(8)  # constraint_set0..5 flags, reserved_zero_2bits
    b.u(8)  # level_idc
    sps_id = b.ue("seq_parameter_set_id", 31)
    if profile in _AMBIGUOUS_PROFILES:
        raise SpsError(f"profile_idc {profile}: FFmpeg and the standard read its SPS differently")
    chroma, separate = 1, 0  # 4:2:0 unless a high profile says otherwise
    if profile in _HIGH_PROFILES:
        chroma = b.ue("chroma_format_idc", 3)
        if chroma == 3:
            separate = b.u(1)  # separate_colour_plane_flag
        b.ue("bit_depth_luma_minus8", 6)
        b.ue("bit_depth_chroma_minus8", 6)
        b.u(1)  # qpprime_y_zero_transform_bypass_flag
        if b.u(1):  # seq_scaling_matrix_present_flag
            for i in range(12 if chroma == 3 else 8):
                if b.u(1):  # seq_scaling_list_present_flag[i]: six 4x4 lists, then 8x8 ones
                    _skip_scaling_list(b, 16 if i < 6 else 64)
    b.ue("log2_max_frame_num_minus4", 12)
    poc_type = b.ue("pic_order_cnt_type", 2)
    if poc_type == 0:
        b.ue("log2_max_pic_order_cnt_lsb_minus4", 12)
    elif poc_type == 1:
        b.u(1)  # delta_pic_order_always_zero_flag
        b.se("offset_for_non_ref_pic", -_INT32, _INT32)
        b.se("offset_for_top_to_bottom_field", -_INT32, _INT32)
        for _ in range(b.ue("num_ref_frames_in_pic_order_cnt_cycle", 255)):
            b.se("offset_for_ref_frame", -_INT32, _INT32)
    b.ue("max_num_ref_frames", 16)
    b.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = b.ue("pic_width_in_mbs_minus1", MAX_SIDE_MBS - 1) + 1
    map_units = b.ue("pic_height_in_map_units_minus1", MAX_SIDE_MBS - 1) + 1
    frame_mbs_only = b.u(1)
    if not frame_mbs_only:
        b.u(1)  # mb_adaptive_frame_field_flag
    b.u(1)  # direct_8x8_inference_flag
    height_mbs = map_units * (2 - frame_mbs_only)  # field coding: a map unit is two macroblock rows
    if height_mbs > MAX_SIDE_MBS or width_mbs * height_mbs > MAX_FRAME_MBS:
        raise SpsError(f"{width_mbs}x{height_mbs} macroblocks, larger than any level allows")
    left = right = top = bottom = 0
    if b.u(1):  # frame_cropping_flag
        left, right, top, bottom = (b.ue(f"frame_crop_{side}_offset", 0xFFFF)
                                    for side in ("left", "right", "top", "bottom"))
    # Crop units (7.4.2.1.1): chroma samples, so 2 luma for subsampled directions; rows of
    # a field pair when field coded. Separate colour planes are coded like monochrome.
    sub_w, sub_h = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}[0 if separate else chroma]
    cut_x, cut_y = (left + right) * sub_w, (top + bottom) * sub_h * (2 - frame_mbs_only)
    coded_w, coded_h = 16 * width_mbs, 16 * height_mbs
    if cut_x >= coded_w or cut_y >= coded_h:
        raise SpsError(f"cropping {cut_x}x{cut_y} leaves nothing of {coded_w}x{coded_h}")
    if cut_x >= MAX_CROP or cut_y >= MAX_CROP:
        raise SpsError(f"cropping {cut_x}x{cut_y} of {coded_w}x{coded_h}: the coded picture would be "
                       f"far larger than the displayed one")
    return SpsSize(sps_id, profile, coded_w - cut_x, coded_h - cut_y, coded_w, coded_h), b.pos


def parse_sps(rbsp: bytes) -> SpsSize:
    """The size one SPS declares; `rbsp` follows the NAL header byte, emulation prevention removed.

    Raises SpsError for a truncated SPS, out-of-range or absurd values, ambiguous profiles.
    """
    return _parse(rbsp, _rbsp_bits(rbsp))[0]


def _parse_nal(payload: bytes) -> SpsSize:
    rbsp = unescape_rbsp(payload)
    size, used_bits = _parse(rbsp, _rbsp_bits(rbsp))
    used = (used_bits + 7) // 8
    if payload[:used] != rbsp[:used]:
        # An emulation-prevention byte inside the fields read. FFmpeg parses the raw bytes
        # when its parse of the RBSP fails (h264dec.c): they must give the same size.
        try:
            raw_size, _ = _parse(payload, len(payload) * 8)
        except SpsError as e:
            raise SpsError(f"the SPS reads differently with its emulation-prevention bytes ({e})") from None
        if raw_size != size:
            raise SpsError(f"the SPS reads as {size.width}x{size.height} or, with its emulation-prevention "
                           f"bytes, {raw_size.width}x{raw_size.height}")
    return size


def sps_sizes(access_unit: bytes) -> list[SpsSize]:
    """Every SPS (and subset SPS) in an Annex-B access unit, in order; [] if it has none.

    Raises SpsError if any of them is refused (see `parse_sps`) or there are more than 32.
    """
    out: list[SpsSize] = []
    for m in _SPS_START.finditer(access_unit):
        if len(out) == _MAX_SPS_PER_AU:
            raise SpsError(f"more than {_MAX_SPS_PER_AU} SPS in one access unit")
        end = _NAL_END.search(access_unit, m.end())
        payload = access_unit[m.end():end.start() if end else len(access_unit)]
        try:
            out.append(_parse_nal(payload))
        except SpsError as e:
            raise SpsError(f"SPS at byte {m.start()}: {e}") from None
    return out
