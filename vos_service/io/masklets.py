"""Masklets as JSON lines: one line per frame, one RLE mask per object.

Line format (keys always present; ``null`` where a value is unknown)::

    {"frame_index": 12, "pts": 0.4004,
     "objects": [{"obj_id": 1, "score": 9.1, "visible": true, "iou": 0.93,
                  "box": [x0, y0, x1, y1], "revision": 0,
                  "rle": {"size": [h, w], "counts": "..."}}]}

``box`` is inclusive-exclusive pixels (see ``rle.mask_bbox``). This module
takes plain Python/numpy values, not engine types, so offline tools can read
and write these files without importing torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from vos_service.io.rle import Rle, decode_mask, encode_mask
from vos_service.io.closing import ClosingContext

__all__ = ["MaskletFrame", "MaskletRecord", "MaskletWriter", "read_masklets"]

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) pixels, inclusive-exclusive

_OBJECT_KEYS = frozenset({"obj_id", "mask", "rle", "score", "visible", "iou", "box", "revision"})


@dataclass(frozen=True)
class MaskletRecord:
    """One object's masklet on one frame."""

    obj_id: int
    mask: np.ndarray  # (H, W) bool, source-frame resolution
    score: float | None = None  # model's object score (logit); None if not reported
    visible: bool = True  # False when the model says the object is absent/occluded
    iou: float | None = None  # model's predicted IoU of the chosen mask
    box: Box | None = None  # written as given; derive with rle.mask_bbox if needed
    revision: int = 0  # bumped each time a correction re-publishes this frame


@dataclass(frozen=True)
class MaskletFrame:
    """All masklets of one frame, as read back from a file."""

    frame_index: int
    pts: float | None  # presentation time in seconds
    objects: tuple[MaskletRecord, ...]


def _opt_float(value: Any) -> float | None:
    # float() also turns numpy scalars into plain floats that json accepts.
    return None if value is None else float(value)


def _box_json(box: Any) -> list[int] | None:
    if box is None:
        return None
    values = [int(v) for v in box]
    if len(values) != 4:
        raise ValueError(f"box must be (x0, y0, x1, y1), got {box!r}")
    return values


def _rle_json(rle: Mapping[str, Any]) -> Rle:
    """Pass an already encoded RLE through, with bytes counts made JSON-safe."""
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    elif not isinstance(counts, str):
        raise ValueError("rle counts must be compressed (str or bytes); encode the mask with rle.encode_mask")
    h, w = (int(v) for v in rle["size"])
    return {"size": [h, w], "counts": counts}


def _object_json(obj: MaskletRecord | Mapping[str, Any]) -> dict[str, Any]:
    """One object as a JSON-ready dict; a mapping may carry ``mask`` (array) or ``rle``."""
    if isinstance(obj, MaskletRecord):
        fields: Mapping[str, Any] = vars(obj)
        rle = encode_mask(obj.mask)
    else:
        fields = obj
        unknown = set(obj) - _OBJECT_KEYS
        if unknown:
            raise ValueError(f"unknown masklet keys {sorted(unknown)}; allowed: {sorted(_OBJECT_KEYS)}")
        if ("mask" in obj) == ("rle" in obj):
            raise ValueError("a masklet needs exactly one of 'mask' (array) or 'rle' (encoded)")
        if "obj_id" not in obj:
            raise ValueError("a masklet needs 'obj_id'")
        rle = encode_mask(obj["mask"]) if "mask" in obj else _rle_json(obj["rle"])
    return {
        "obj_id": int(fields["obj_id"]),
        "score": _opt_float(fields.get("score")),
        "visible": bool(fields.get("visible", True)),
        "iou": _opt_float(fields.get("iou")),
        "box": _box_json(fields.get("box")),
        "revision": int(fields.get("revision", 0)),
        "rle": rle,
    }


class MaskletWriter(ClosingContext):
    """Append one JSON line per frame to a file (or an open text stream).

    Lines are flushed as written so a consumer can ``tail -f`` the file
    while a stream runs. NaN/inf scores raise ValueError rather than produce
    lines that strict JSON parsers reject.
    """

    def __init__(self, path_or_file: str | os.PathLike[str] | IO[str], *, append: bool = False) -> None:
        if isinstance(path_or_file, (str, os.PathLike)):
            self._file: IO[str] = open(path_or_file, "a" if append else "w", encoding="utf-8")
            self._owns_file = True
        else:
            self._file = path_or_file
            self._owns_file = False
        self._closed = False

    def write(
        self,
        frame_index: int,
        objects: Iterable[MaskletRecord | Mapping[str, Any]],
        *,
        pts: float | None = None,
    ) -> None:
        """Write one frame's masklets (an empty ``objects`` still writes a line)."""
        if self._closed:
            raise RuntimeError("MaskletWriter is closed")
        line = {
            "frame_index": int(frame_index),
            "pts": _opt_float(pts),
            "objects": [_object_json(obj) for obj in objects],
        }
        self._file.write(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file if this writer opened it. Safe to call twice."""
        if not self._closed and self._owns_file:
            self._file.close()
        self._closed = True


def _record_from_json(obj: Mapping[str, Any]) -> MaskletRecord:
    box = obj.get("box")
    return MaskletRecord(
        obj_id=int(obj["obj_id"]),
        mask=decode_mask(obj["rle"]),
        score=_opt_float(obj.get("score")),
        visible=bool(obj.get("visible", True)),
        iou=_opt_float(obj.get("iou")),
        box=None if box is None else tuple(int(v) for v in box),  # type: ignore[arg-type]
        revision=int(obj.get("revision", 0)),
    )


def read_masklets(path_or_file: str | os.PathLike[str] | IO[str]) -> Iterator[MaskletFrame]:
    """Yield frames back from a masklets file, masks decoded to (H, W) bool.

    Blank lines are skipped; missing optional keys take the MaskletRecord
    defaults. A malformed line raises ValueError naming its line number.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, encoding="utf-8") as f:
            yield from _read_lines(f, os.fspath(path_or_file))
    else:
        yield from _read_lines(path_or_file, getattr(path_or_file, "name", "<stream>"))


def _read_lines(f: IO[str], name: str) -> Iterator[MaskletFrame]:
    for lineno, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            frame = MaskletFrame(
                frame_index=int(data["frame_index"]),
                pts=_opt_float(data.get("pts")),
                objects=tuple(_record_from_json(obj) for obj in data["objects"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{name}:{lineno}: bad masklet line: {exc}") from exc
        yield frame
