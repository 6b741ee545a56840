"""Per-frame region similarity J and boundary F, as the DAVIS benchmark defines them.

A faithful numpy + OpenCV port of the DAVIS 2017 toolkit
(davisvideochallenge/davis2017-evaluation, ``davis2017/metrics.py``:
``db_eval_iou``, ``f_measure``, ``_seg2bmap``; ``davis2017/utils.py``:
``db_statistics``). Where we differ on purpose it says so below.

All masks are HxW arrays; anything non-zero is foreground. ``void`` marks
pixels that count for neither side (DAVIS labels them 255 in the ground truth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "DEFAULT_BOUND_TH",
    "Statistics",
    "boundary_f",
    "boundary_map",
    "boundary_radius",
    "disk",
    "region_j",
    "statistics",
]

# The toolkit's default tolerance: 0.8 % of the image diagonal.
DEFAULT_BOUND_TH = 0.008


def region_j(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """Jaccard index |pred ∩ gt| / |pred ∪ gt| over non-void pixels.

    pred, gt, void: HxW (any dtype, non-zero = set). Both empty → 1.0, as DAVIS scores it.
    """
    _check_same_shape(pred, gt, void)
    pred, gt = pred.astype(bool), gt.astype(bool)
    keep = np.ones_like(gt) if void is None else ~void.astype(bool)
    inter = np.count_nonzero(pred & gt & keep)
    union = np.count_nonzero((pred | gt) & keep)
    return 1.0 if union == 0 else inter / union


def boundary_radius(shape: tuple[int, ...], bound_th: float = DEFAULT_BOUND_TH) -> float:
    """Tolerance in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th * image diagonal)."""
    if bound_th >= 1:
        return float(bound_th)
    return float(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def disk(radius: float) -> np.ndarray:
    """Disk structuring element, uint8 (2r+1)x(2r+1): 1 where x² + y² <= r².

    Same as ``skimage.morphology.disk(radius)`` (strict radius), which the toolkit uses.
    """
    coords = np.arange(-radius, radius + 1, dtype=np.float64)  # half-pixel grid if radius is fractional, like skimage
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    return ((xx * xx + yy * yy) <= float(radius) ** 2).astype(np.uint8)


def boundary_map(seg: np.ndarray) -> np.ndarray:
    """1-pixel-wide boundary of a mask, offset half a pixel towards the origin (HxW bool).

    Port of ``_seg2bmap`` (David Martin, BSDS): a pixel is on the boundary when it differs
    from its east, south or south-east neighbour; the last row compares east only, the
    last column south only, and the bottom-right pixel is never a boundary.
    (The toolkit's resize-to-another-size branch is never used by it and is left out.)
    """
    seg = seg.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def boundary_f(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None,
               bound_th: float = DEFAULT_BOUND_TH) -> float:
    """Boundary F-measure between a predicted and a ground-truth mask (HxW), in [0, 1].

    Boundary pixels of each mask (void pixels cleared first) match when they lie within
    ``boundary_radius`` pixels (a disk) of the other mask's boundary; precision and recall
    of those matches give F. Empty-vs-empty scores 1; one side empty scores 0.
    """
    _check_same_shape(pred, gt, void)
    keep = np.ones(gt.shape, bool) if void is None else ~void.astype(bool)
    fg_boundary = boundary_map(pred.astype(bool) & keep)
    gt_boundary = boundary_map(gt.astype(bool) & keep)

    kernel = disk(boundary_radius(gt.shape, bound_th))
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), kernel).astype(bool)
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), kernel).astype(bool)

    n_fg = np.count_nonzero(fg_boundary)
    n_gt = np.count_nonzero(gt_boundary)
    if n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    elif n_fg == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = np.count_nonzero(fg_boundary & gt_dil) / n_fg
        recall = np.count_nonzero(gt_boundary & fg_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Statistics:
    """Summary of one object's per-frame scores, as ``db_statistics`` reports them."""

    mean: float    # mean over the evaluated frames (NaNs ignored)
    recall: float  # fraction of evaluated frames scoring above 0.5
    decay: float   # mean of the first quarter of frames minus mean of the last quarter


def statistics(per_frame: np.ndarray) -> Statistics:
    """Mean, recall and decay of a 1-D array of per-frame scores (port of ``db_statistics``).

    Decay splits the frames into 4 bins at round(linspace(1, n, 5)) - 1, each bin
    including its right edge, exactly as the toolkit does; the toolkit casts those bin
    edges to uint8, which wraps past 255 frames; we keep them as plain ints.
    """
    values = np.asarray(per_frame, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no frames to summarize")
    with np.errstate(invalid="ignore"):
        mean = float(np.nanmean(values)) if not np.all(np.isnan(values)) else math.nan
        recall = float(np.nanmean(values > 0.5))
    n_bins = 4
    ids = (np.round(np.linspace(1, len(values), n_bins + 1) + 1e-10) - 1).astype(np.int64)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(n_bins)]
    decay = float(_nanmean(bins[0]) - _nanmean(bins[-1]))
    return Statistics(mean=mean, recall=recall, decay=decay)


def _nanmean(x: np.ndarray) -> float:
    return math.nan if x.size == 0 or np.all(np.isnan(x)) else float(np.nanmean(x))


def _check_same_shape(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None) -> None:
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"masks must be HxW of one shape, got {pred.shape} and {gt.shape}")
    if void is not None and void.shape != gt.shape:
        raise ValueError(f"void mask {void.shape} does not match masks {gt.shape}")
