"""Untrusted COCO RLEs: every check before pycocotools sees a byte.

pycocotools trusts its input: a 40-byte RLE declaring 2^31 x 2^31 pixels made
it segfault (killing every stream of the service), ``counts "0"`` raised
MemoryError, and its rleDecode writes runs without a bound check, so counts
adding up to more than h*w overflow the heap even with a sane size. Here the
declared size must equal the frame's, the counts string is parsed (vectorised,
no per-character Python loop) and its runs must be non-negative and add up to
exactly h*w; only then is the mask expanded.

COCO's compressed counts (maskApi.c, rleFrString): each number is a run of
5-bit chunks, least significant first; chunk c = ord(char) - 48, bit 0x20 of
c says another chunk follows, bit 0x10 of the last chunk sign-extends. From
the third number on, each is a delta against the count two places back.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RleError", "decode_untrusted", "parse_counts"]

_MAX_CHUNKS = 7  # 35 bits: more than any 32-bit run needs


class RleError(ValueError):
    """An RLE that does not describe a mask of the expected size."""


def parse_counts(counts: str | bytes, max_len: int) -> np.ndarray:
    """COCO compressed counts -> run lengths (int64, may be negative if the input is hostile)."""
    raw = counts.encode("latin-1", "replace") if isinstance(counts, str) else bytes(counts)
    if len(raw) > max_len:
        raise RleError(f"counts is {len(raw)} characters, over the limit of {max_len}")
    if not raw:
        raise RleError("counts is empty")
    c = np.frombuffer(raw, np.uint8).astype(np.int64) - 48
    if (c < 0).any() or (c > 63).any():
        raise RleError("counts holds characters outside COCO's alphabet ('0'..'o')")
    last = (c & 0x20) == 0  # a chunk without the continuation bit ends its number
    if not last[-1]:
        raise RleError("counts ends in the middle of a number")
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_CHUNKS:
        raise RleError(f"a number in counts has more than {_MAX_CHUNKS} chunks")
    pos = np.arange(len(c)) - np.repeat(starts, lengths)  # chunk position within its number
    values = np.add.reduceat((c & 0x1F) << (5 * pos), starts)
    negative = (c[ends] & 0x10) != 0
    values = np.where(negative, values - (np.int64(1) << (5 * lengths)), values)
    # Undo the delta coding: x[m] += x[m-2] for m > 2, i.e. a running sum over each parity class
    # from index 1 (odd) and from index 2 (even); x[0] stands alone.
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    if len(values) > 2:
        runs[2::2] = np.cumsum(values[2::2])
    return runs


def decode_untrusted(size, counts: str | bytes, height: int, width: int, max_len: int) -> np.ndarray:
    """A client's COCO RLE -> (height, width) bool mask, or RleError. size must be [height, width]."""
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError) as e:
        raise RleError(f"size must be [height, width], got {list(size)[:4]!r}") from e
    if (h, w) != (height, width):
        raise RleError(f"size [{h}, {w}] is not the frame size [{height}, {width}]")
    runs = parse_counts(counts, max_len)
    if (runs < 0).any():
        raise RleError("counts decodes to a negative run length")
    total = int(runs.sum())
    if total != h * w:
        raise RleError(f"counts covers {total} pixels, the mask has {h * w}")
    values = np.zeros(len(runs), np.bool_)
    values[1::2] = True  # runs alternate background / foreground, background first
    flat = np.repeat(values, runs)  # column-major, as COCO stores masks
    return np.ascontiguousarray(flat.reshape(w, h).T)
