"""COCO run-length encoding of binary masks (the wire format of masklets).

An RLE here is the compressed COCO form with ``counts`` as a ``str``::

    {"size": [height, width], "counts": "<ascii>"}

pycocotools returns ``counts`` as bytes; we decode it to ASCII so the dict
goes straight into JSON, protobuf string fields and Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["Rle", "decode_mask", "encode_mask", "mask_area", "mask_bbox", "rle_area"]


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
    """Decode an RLE to an (H, W) bool array, C-contiguous."""
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
