"""Evaluate DAVIS-layout folders of PNG masks: ``<dir>/<sequence>/<frame:05d>.png``.

Masks are indexed (palette) PNGs whose pixel values are object ids, 0 background,
255 void. They are read with PIL, which returns the palette *indices*; OpenCV's
``IMREAD_UNCHANGED`` expands a palette PNG to its colours, so it cannot be used here.
Grayscale PNGs of ids are accepted as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vos_service.eval.metrics import DEFAULT_BOUND_TH
from vos_service.eval.scores import EvalError, Report, evaluate_sequence, summarize

__all__ = ["evaluate_dirs", "find_sequences", "read_mask", "resolve_annotations_dir"]

# Modes whose pixel values are ids: palette, 8-bit gray, 1-bit, 16/32-bit gray.
_ID_MODES = {"P", "L", "1", "I;16", "I"}


def read_mask(path: Path | str) -> np.ndarray:
    """HxW uint8 object ids of an indexed or grayscale PNG."""
    with Image.open(path) as im:
        if im.mode not in _ID_MODES:
            raise EvalError(f"{path}: mask mode {im.mode!r} is not an indexed or grayscale image of ids")
        ids = np.array(im)
    if ids.dtype == bool:
        ids = ids.astype(np.uint8)
    if ids.max(initial=0) > 255:
        raise EvalError(f"{path}: object id {int(ids.max())} does not fit DAVIS' 8-bit ids")
    return ids.astype(np.uint8)


def resolve_annotations_dir(path: Path | str) -> Path:
    """The folder that holds the sequence folders.

    Accepts the sequences' parent itself, or a DAVIS root (``Annotations/`` inside it,
    optionally ``Annotations/480p/``) as ``write_davis`` and the DAVIS release lay it out.
    """
    path = Path(path)
    if not path.is_dir():
        raise EvalError(f"{path}: not a directory")
    if find_sequences(path):
        return path
    for candidate in (path / "Annotations" / "480p", path / "Annotations"):
        if candidate.is_dir() and find_sequences(candidate):
            return candidate
    raise EvalError(f"{path}: no sequence folders with PNG masks")


def find_sequences(root: Path) -> list[str]:
    """Names of the sub-folders of ``root`` that hold at least one PNG, sorted."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.png")))


def evaluate_dirs(pred_dir: Path | str, gt_dir: Path | str, *, sequences: list[str] | None = None,
                  bound_th: float = DEFAULT_BOUND_TH) -> Report:
    """J&F of every ground-truth sequence (or the named ones) against the predictions.

    Frames are the ground truth's PNG files in name order; each prediction must have the
    same file name (frames 0 and T-1 are not scored, so predictions may omit them).
    """
    gt_root, pred_root = resolve_annotations_dir(gt_dir), Path(pred_dir)
    if not pred_root.is_dir():
        raise EvalError(f"{pred_root}: not a directory")
    if not find_sequences(pred_root) and (pred_root / "Annotations").is_dir():
        pred_root = resolve_annotations_dir(pred_root)
    names = sequences if sequences is not None else find_sequences(gt_root)
    scores = []
    for name in names:
        gt_files = sorted((gt_root / name).glob("*.png"))
        if not gt_files:
            raise EvalError(f"{gt_root / name}: no ground-truth masks")
        gt = [read_mask(p) for p in gt_files]
        scored = set(range(1, len(gt_files) - 1))
        pred: list[np.ndarray | None] = []
        for t, g in enumerate(gt_files):
            p = pred_root / name / g.name
            if t not in scored:
                pred.append(None)  # never read: the toolkit does not score first and last frames
            elif not p.is_file():
                raise EvalError(f"{p}: missing prediction (sequence {name!r}, frame {g.stem})")
            else:
                pred.append(read_mask(p))
        scores.append(evaluate_sequence(pred, gt, name=name, bound_th=bound_th))
    return summarize(scores)
