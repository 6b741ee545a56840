"""COCO run-length encoding of binary masks (the wire format of masklets).

An RLE here is the compressed COCO form with ``counts`` as a ``str``::

    {"size": [height, width], "counts": "<ascii>"}

pycocotools returns ``counts`` as bytes; we decode it to ASCII so the dict
goes straight into JSON, protobuf string fields and Redis.

RLEs from clients go through `decode_untrusted`, never `decode_mask`:
pycocotools trusts ``size`` (it allocates h*w bytes: a 40-byte RLE declaring
2^31 x 2^31 segfaults it) and writes the runs of ``counts`` without bounds
checks (runs summing past h*w overflow its heap). `decode_untrusted` parses
and checks everything in numpy and decodes without native code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import operator

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["Rle", "RleError", "decode_mask", "decode_untrusted", "encode_mask", "mask_area", "mask_bbox",
           "parse_counts", "rle_area"]


class Rle(TypedDict):
    """Compressed COCO RLE, JSON-ready."""

    size: list[int]  # [height, width] in pixels
    counts: str  # COCO's compressed run lengths, ASCII


def _as_2d(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    return mask


def encode_mask(mask: np.ndarray) -> Rle:
    """Encode one (H, W) mask; any nonzero value counts as foreground.

    Accepts any memory layout (views, slices, C order): pycocotools reads
    column-major uint8 and would silently mis-encode anything else.
    """
    mask = _as_2d(mask)
    if mask.dtype != np.bool_:
        # Binarise first: the C encoder starts a new run at every change of
        # value, so 1s next to 255s would become two runs.
        mask = mask != 0
    fortran = np.asfortranarray(mask, dtype=np.uint8)
    rle = mask_utils.encode(fortran)
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _to_coco(rle: Mapping[str, Any]) -> dict[str, Any]:
    """Accept our str counts, pycocotools' bytes counts, or COCO's uncompressed list form."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a COCO RLE (need 'size': [h, w] and 'counts'): {rle!r:.200}") from exc
    if isinstance(counts, list):
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [h, w], "counts": counts}


def decode_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a trusted RLE (our own data) to an (H, W) bool array, C-contiguous.

    Not for client input: pycocotools believes ``size`` and ``counts``; use `decode_untrusted`.
    """
    coco = _to_coco(rle)
    return np.ascontiguousarray(mask_utils.decode(coco), dtype=np.bool_)


def rle_area(rle: Mapping[str, Any]) -> int:
    """Foreground pixel count of an RLE, without decoding it."""
    return int(mask_utils.area(_to_coco(rle)))


def mask_area(mask: np.ndarray) -> int:
    """Foreground pixel count of an (H, W) mask."""
    return int(np.count_nonzero(_as_2d(mask)))


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box of the foreground as ``(x0, y0, x1, y1)`` in pixels.

    Inclusive-exclusive: columns ``x0 .. x1-1`` and rows ``y0 .. y1-1`` hold
    the foreground, so ``mask[y0:y1, x0:x1]`` crops it and ``x1 - x0`` is the
    width (same extent as pycocotools' ``toBbox`` xywh). None if empty.
    """
    mask = _as_2d(mask)
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# ---- untrusted RLEs ------------------------------------------------------------------------


class RleError(ValueError):
    """An untrusted RLE is malformed or does not fit the frame; nothing was decoded."""


# COCO's alphabet (maskApi.c rleToString): a character is one 5-bit chunk of a number plus 48.
_ALPHABET_LO, _ALPHABET_HI = 48, 48 + 63
# 7 chunks carry 35 bits: COCO's encoder never needs more for a mask below 2^34 pixels, and
# its reader shifts an int by 5 * k, undefined past k = 6. Longer numbers are corrupt, not big.
_MAX_CHUNKS = 7
# Whatever the caller allows: 2^26 numbers of |x| < 2^35 sum to < 2^61, so the int64
# cumulative sums below cannot overflow, and the temporaries stay a few hundred MB.
_HARD_MAX_COUNTS_LEN = 1 << 26


def parse_counts(counts: str | bytes, max_counts_len: int) -> np.ndarray:
    """COCO compressed ``counts`` -> run lengths, (m,) int64, alternating 0-runs and 1-runs.

    A vectorised port of pycocotools' ``rleFrString``: each number is 5-bit chunks, little
    endian, chunk ``c = ord(ch) - 48``; ``c & 0x20`` says another chunk follows, and on the
    last chunk ``c & 0x10`` is the sign. From the fourth number on, a number is a delta
    against the run two places back (``cnts[m] += cnts[m-2]`` for m > 2).

    Refuses (RleError) a non-str/bytes value, more than `max_counts_len` characters, a
    character outside chr(48)..chr(111), a number of more than 7 chunks, a string ending in
    the middle of a number, and any negative run. The total is not checked here (see
    `decode_untrusted`).
    """
    limit = min(int(max_counts_len), _HARD_MAX_COUNTS_LEN)
    if isinstance(counts, str):
        if len(counts) > limit:
            raise RleError(f"counts has {len(counts)} characters, over the limit of {limit}")
        try:
            data = counts.encode("ascii")
        except UnicodeEncodeError as e:
            raise RleError(f"counts has a non-ASCII character at {e.start}") from None
    elif isinstance(counts, (bytes, bytearray)):
        data = bytes(counts)
        if len(data) > limit:
            raise RleError(f"counts has {len(data)} bytes, over the limit of {limit}")
    else:
        raise RleError(f"counts must be a COCO compressed string, got {type(counts).__name__}")
    buf = np.frombuffer(data, np.uint8)
    if buf.size == 0:
        return np.zeros(0, np.int64)
    bad = np.flatnonzero((buf < _ALPHABET_LO) | (buf > _ALPHABET_HI))
    if bad.size:
        raise RleError(f"counts has {chr(buf[bad[0]])!r} at {bad[0]}, outside COCO's alphabet "
                       f"{chr(_ALPHABET_LO)!r}..{chr(_ALPHABET_HI)!r}")
    chunk = buf - np.uint8(_ALPHABET_LO)  # 0..63
    last = (chunk & 0x20) == 0  # the last chunk of a number has no continuation flag
    if not last[-1]:
        raise RleError("counts ends in the middle of a number")
    ends = np.flatnonzero(last)  # index of each number's last chunk
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    nchunks = ends - starts + 1
    if int(nchunks.max()) > _MAX_CHUNKS:
        i = int(np.argmax(nchunks > _MAX_CHUNKS))
        raise RleError(f"number {i} of counts has {nchunks[i]} chunks, over {_MAX_CHUNKS}")
    values = (chunk[starts] & 0x1F).astype(np.int64)  # every number has a first chunk
    for j in range(1, int(nchunks.max())):  # at most 6 more passes over the numbers, none per character
        has = np.flatnonzero(nchunks > j)
        values[has] |= (chunk[starts[has] + j] & 0x1F).astype(np.int64) << (5 * j)
    negative = (chunk[ends] & 0x10) != 0  # sign-extend: x | (-1 << 5k) == x - 2^(5k) for 0 <= x < 2^(5k)
    values[negative] -= np.left_shift(np.int64(1), 5 * nchunks[negative])
    # Undo the delta coding: two interleaved chains (1, 3, 5, ...) and (2, 4, 6, ...); 0 stands alone.
    values[1::2] = np.cumsum(values[1::2])
    values[2::2] = np.cumsum(values[2::2])
    if values.size and int(values.min()) < 0:
        i = int(np.argmax(values < 0))
        raise RleError(f"run {i} of counts is negative ({values[i]})")
    return values


def _frame_dim(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise RleError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise RleError(f"{name} must be an integer, got {value!r:.40}") from None
    if v < 0:
        raise RleError(f"{name} must be >= 0, got {v}")
    return v


def decode_untrusted(size: Any, counts: str | bytes, height: int, width: int, max_counts_len: int) -> np.ndarray:
    """Decode a client's RLE for a `height` x `width` frame: (H, W) bool, C-contiguous.

    `size` must be exactly ``[height, width]`` (the stream's frame size, not the client's
    word), `counts` COCO's compressed string of at most `max_counts_len` characters whose runs
    sum to exactly height * width. Everything is checked before any decoding, and the
    decoding itself is numpy (np.repeat), so no native code ever sees the client's values.
    Raises RleError (a ValueError) with the reason.
    """
    h, w = _frame_dim(height, "height"), _frame_dim(width, "width")
    try:
        n = len(size)
    except TypeError:
        raise RleError(f"size must be [height, width], got {size!r:.60}") from None
    if n != 2:
        raise RleError(f"size must be [height, width], got {n} values")
    got = (_frame_dim(size[0], "size[0]"), _frame_dim(size[1], "size[1]"))
    if got != (h, w):
        raise RleError(f"size {list(got)} is not the frame size [{h}, {w}]")
    runs = parse_counts(counts, max_counts_len)
    total = int(runs.sum())
    if total != h * w:
        raise RleError(f"counts cover {total} pixels, the {h}x{w} frame has {h * w}")
    values = np.zeros(runs.size, np.bool_)
    values[1::2] = True  # runs alternate, starting with background
    # COCO runs are column-major: the flat array is the transposed (W, H) mask.
    return np.ascontiguousarray(np.repeat(values, runs).reshape(w, h).T)
