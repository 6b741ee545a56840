"""Seeded generators of hostile messages: open messages, frame payloads, prompts, unary requests.

Every generator takes a numpy Generator, so a run is repeated exactly by its seed. They build
proto messages only; what the service must answer to each is decided in runner.py.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

from tests.api.harness import h264_access_units
from vos_service.api.gen.vos.v1 import vos_pb2 as pb
from vos_service.io.rle import encode_mask

I32 = (-(2 ** 31), -1, 0, 1, 2, 3, 7, 16, 17, 2 ** 31 - 1)
I64 = (-(2 ** 63), -1, 0, 2 ** 62, 2 ** 63 - 1)
FLOATS = (float("nan"), float("inf"), float("-inf"), -1.0, -1e30, 1e30, 0.0, 3.4e38)


def pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


# ---- prompts -------------------------------------------------------------------------------


def _coord(rng, limit: int) -> float:
    return float(rng.uniform(0, limit)) if rng.random() < 0.6 else pick(rng, FLOATS + (float(limit), limit + 1.0))


def rand_rle(rng, h: int, w: int) -> pb.Rle:
    """Mostly hostile RLEs: huge or wrong sizes, counts that do not add up, bad characters."""
    kind = int(rng.integers(8))
    if kind == 0:  # a valid mask of the frame size (a rectangle or noise)
        m = np.zeros((h, w), bool)
        if h * w <= 4096 and rng.random() < 0.5:
            m = rng.random((h, w)) < rng.random()
        else:
            y0, y1 = sorted(rng.integers(0, h + 1, 2))
            x0, x1 = sorted(rng.integers(0, w + 1, 2))
            m[y0:y1, x0:x1] = True
        rle = encode_mask(m)
        return pb.Rle(size=rle["size"], counts=rle["counts"])
    if kind == 1:  # the 40-byte crash: a huge declared size
        return pb.Rle(size=[2 ** 31 - 1, 2 ** 31 - 1], counts=pick(rng, ("1", "0", "")))
    if kind == 2:
        return pb.Rle(size=[16384, 16384], counts="0")
    if kind == 3:  # the frame's size, counts summing to too much or too little
        rle = encode_mask(np.ones((h, w), bool))
        return pb.Rle(size=[h, w], counts=rle["counts"] + pick(rng, ("1", "oooooo1", "P")))
    if kind == 4:  # random printable garbage of the right size
        n = int(rng.integers(0, 200))
        return pb.Rle(size=[h, w], counts="".join(chr(int(c)) for c in rng.integers(32, 127, n)))
    if kind == 5:  # wrong number of dimensions
        return pb.Rle(size=[int(v) for v in rng.integers(-5, 50, int(rng.integers(0, 4)))], counts="PP")
    if kind == 6:  # an unterminated number / continuation bytes only
        return pb.Rle(size=[h, w], counts="o" * int(rng.integers(1, 40)))
    return pb.Rle(size=[h, w], counts="0" * int(rng.integers(1, 5000)))  # runs of zero length


def rand_prompt(rng, h: int, w: int, obj_id: int | None = None) -> pb.Prompt:
    p = pb.Prompt(obj_id=pick(rng, I32) if obj_id is None else obj_id)
    kind = int(rng.integers(5))
    if kind in (0, 1):  # points, perhaps too many
        n = pick(rng, (1, 1, 2, 5, 64, 65, 300, 16000)) if kind == 0 else int(rng.integers(0, 4))
        xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
        bad = rng.random(n) < 0.3
        labels = np.where(rng.random(n) < 0.9, rng.integers(0, 2, n), rng.integers(-3, 5, n))
        p.points.extend(pb.Point(x=_coord(rng, w) if b else float(x), y=_coord(rng, h) if b else float(y),
                                 label=int(lab)) for x, y, b, lab in zip(xs, ys, bad, labels))
    if kind in (1, 2):  # a box, perhaps inverted or outside
        x0, x1 = sorted(rng.uniform(0, w, 2))
        y0, y1 = sorted(rng.uniform(0, h, 2))
        if rng.random() < 0.4:
            x0, x1 = x1, x0
        if rng.random() < 0.3:
            x1, y1 = _coord(rng, w), _coord(rng, h)
        p.box.CopyFrom(pb.Box(x0=float(x0), y0=float(y0), x1=float(x1), y1=float(y1)))
    if kind == 3:
        p.mask.CopyFrom(rand_rle(rng, h, w))
    if kind == 4 and rng.random() < 0.5:  # a mask with points: not allowed together
        p.mask.CopyFrom(rand_rle(rng, h, w))
        p.points.append(pb.Point(x=1.0, y=1.0, label=1))
    if rng.random() < 0.3:
        p.clear_previous = bool(rng.random() < 0.5)
    return p


def rand_prompts(rng, h: int, w: int) -> list[pb.Prompt]:
    n = pick(rng, (0, 1, 1, 2, 3, 17))
    return [rand_prompt(rng, h, w, obj_id=int(rng.integers(1, 6)) if rng.random() < 0.7 else None)
            for _ in range(n)]


def valid_click(h: int, w: int, obj_id: int = 1) -> pb.Prompt:
    return pb.Prompt(obj_id=obj_id, points=[pb.Point(x=w / 2, y=h / 2, label=1)])


# ---- frames --------------------------------------------------------------------------------


def encode(fmt: int, rgb: np.ndarray) -> bytes:
    if fmt == pb.FRAME_FORMAT_PNG:
        return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    if fmt == pb.FRAME_FORMAT_RGB:
        return rgb.tobytes()
    if fmt == pb.FRAME_FORMAT_BGR:
        return np.ascontiguousarray(rgb[..., ::-1]).tobytes()
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def png_bomb(width: int = 16384, height: int = 16384) -> bytes:
    """A 1-bit greyscale PNG declaring width x height whose IDAT inflates to ~height * width / 8 bytes."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    raw = zlib.compress(b"\x00" * (1 + width // 8) * 64, 9)  # the first rows only: small, still a bomb header
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its SOF0 header claiming another size."""
    i = jpeg.index(b"\xff\xc0")
    return jpeg[:i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9:]


def h264_units(frames: list[np.ndarray]) -> list[bytes]:
    """Annex-B access units without B-frames (one frame out per unit in), SPS/PPS in every keyframe."""
    return h264_access_units(frames, preset="ultrafast", tune="zerolatency", bf="0", **{"repeat-headers": "1"})


def mutate(rng, data: bytes) -> bytes:
    """Truncated, bit-flipped, or spliced with random bytes."""
    kind = int(rng.integers(3))
    if kind == 0 or len(data) < 4:
        return data[:int(rng.integers(0, max(1, len(data))))]
    buf = bytearray(data)
    if kind == 1:
        for pos in rng.integers(0, len(buf), int(rng.integers(1, 16))):
            buf[int(pos)] ^= 1 << int(rng.integers(8))
        return bytes(buf)
    at = int(rng.integers(len(buf)))
    return bytes(buf[:at]) + rng.bytes(int(rng.integers(1, 64))) + bytes(buf[at:])


class FramePayloads:
    """Valid and hostile payloads for one stream format at one size."""

    def __init__(self, fmt: int, frames: list[np.ndarray]) -> None:
        self.fmt = fmt
        self.h, self.w = frames[0].shape[:2]
        if fmt == pb.FRAME_FORMAT_H264:
            self.valid = h264_units(frames)
            other = [cv2.resize(f, (self.w // 2 + 16, self.h // 2 + 16)) for f in frames[:2]]
            self.wrong_size = h264_units(other)[0]  # its SPS declares another size
        else:
            self.valid = [encode(fmt, f) for f in frames]
            self.wrong_size = encode(fmt, cv2.resize(frames[0], (self.w + 8, self.h)))
        self._next = 0

    def next_valid(self) -> bytes:
        data = self.valid[self._next % len(self.valid)]
        self._next += 1
        return data

    def hostile(self, rng) -> bytes:
        kind = int(rng.integers(6))
        if kind == 0:
            return b"" if rng.random() < 0.3 else rng.bytes(int(rng.integers(1, 4096)))
        if kind == 1:
            return self.wrong_size
        if kind == 2 and self.fmt == pb.FRAME_FORMAT_PNG:
            return png_bomb()
        if kind == 2 and self.fmt in (pb.FRAME_FORMAT_JPEG, pb.FRAME_FORMAT_UNSPECIFIED):
            return jpeg_with_size(self.valid[0], 16384, 16384)
        return mutate(rng, self.valid[int(rng.integers(len(self.valid)))])


# ---- open messages ------------------------------------------------------------------------


def rand_stream_id(rng) -> str:
    kind = int(rng.integers(6))
    if kind == 0:
        return ""
    if kind == 1:
        return "x" * int(rng.integers(120, 300))
    if kind == 2:
        return "".join(chr(int(c)) for c in rng.integers(0, 0x3000, int(rng.integers(1, 20))))
    if kind == 3:
        return pick(rng, ("a b", "../etc", "vos:*", "id\n", "x\x00y"))
    return f"fz-{int(rng.integers(10 ** 9))}"


def rand_open(rng, width: int, height: int) -> pb.StreamOpen:
    w = width if rng.random() < 0.6 else pick(rng, (0, 1, 16, 3841, 2 ** 31, 2 ** 32 - 1, width + 1))
    h = height if rng.random() < 0.6 else pick(rng, (0, 1, 9, 2161, 2 ** 31, 2 ** 32 - 1))
    msg = pb.StreamOpen(stream_id=rand_stream_id(rng), width=int(w), height=int(h),
                        format=pick(rng, (0, 1, 2, 3, 4, 5, 6, -1, 99)), mode=pick(rng, (0, 1, 2, 3, -7)))
    if rng.random() < 0.5:
        msg.initial_prompts.extend(rand_prompts(rng, max(1, min(int(h), 1024)), max(1, min(int(w), 1024))))
    return msg
