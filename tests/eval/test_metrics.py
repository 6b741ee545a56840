"""J and F against hand-computed cases (DAVIS 2017 toolkit definitions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vos_service.eval.metrics import boundary_f, boundary_map, boundary_radius, disk, region_j, statistics


def square(shape=(64, 64), y=10, x=10, size=10) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[y:y + size, x:x + size] = 1
    return m


def test_identical_masks_score_one():
    m = square()
    assert region_j(m, m) == 1.0
    assert boundary_f(m, m) == 1.0


def test_disjoint_masks_score_zero():
    a, b = square(x=2), square(x=40, y=40)
    assert region_j(a, b) == 0.0
    assert boundary_f(a, b) == 0.0


def test_shifted_square_has_known_iou():
    # 10x10 shifted 2 px: overlap 8x10 = 80, union 200 - 80 = 120.
    assert region_j(square(x=12), square(x=10)) == pytest.approx(80 / 120)


def test_empty_cases():
    empty, m = np.zeros((32, 32), np.uint8), square((32, 32))
    assert region_j(empty, empty) == 1.0  # DAVIS: nothing to find and nothing found is perfect
    assert boundary_f(empty, empty) == 1.0
    assert region_j(empty, m) == 0.0 and region_j(m, empty) == 0.0
    assert boundary_f(empty, m) == 0.0 and boundary_f(m, empty) == 0.0


def test_void_pixels_count_for_neither_side():
    gt, pred = square(), square()
    void = np.zeros_like(gt)
    void[40:50, 40:50] = 1
    pred[40:50, 40:50] = 1  # predicted foreground on void pixels only
    assert region_j(pred, gt, void) == 1.0
    assert boundary_f(pred, gt, void) == 1.0
    assert region_j(pred, gt) < 1.0


def test_boundary_radius_is_ceil_of_diagonal_fraction():
    assert boundary_radius((256, 256)) == 3.0   # ceil(0.008 * 362.04)
    assert boundary_radius((480, 854)) == 8.0   # DAVIS 480p: ceil(7.84)
    assert boundary_radius((100, 100), bound_th=5) == 5.0  # >= 1 means pixels


def test_disk_matches_skimage_definition():
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(disk(2), [[0, 0, 1, 0, 0],
                                            [0, 1, 1, 1, 0],
                                            [1, 1, 1, 1, 1],
                                            [0, 1, 1, 1, 0],
                                            [0, 0, 1, 0, 0]])
    assert disk(3.0).shape == (7, 7) and disk(3)[3, 0] == 1 and disk(3)[0, 0] == 0


def test_boundary_map_is_seg2bmap():
    seg = np.zeros((5, 5), bool)
    seg[1:3, 1:3] = True
    # Boundary pixels differ from their E, S or SE neighbour: offset half a pixel to the origin.
    expected = np.array([[1, 1, 1, 0, 0],
                         [1, 0, 1, 0, 0],
                         [1, 1, 1, 0, 0],
                         [0, 0, 0, 0, 0],
                         [0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(boundary_map(seg), expected)


def test_boundary_map_edges_of_the_image():
    seg = np.zeros((4, 4), bool)
    seg[:, :2] = True  # left half, touching top, bottom and left edges
    b = boundary_map(seg)
    np.testing.assert_array_equal(b[:, 1], [1, 1, 1, 1])  # last row compares east only: still set
    assert b.sum() == 4
    assert not boundary_map(np.ones((4, 4), bool)).any()  # the image border is no boundary


@pytest.mark.parametrize("shift, expected", [(0, 1.0), (2, 1.0), (3, 1.0), (4, 0.0), (8, 0.0)])
def test_f_tolerance_is_a_disk_of_bound_pix(shift, expected):
    # 256x256: tolerance 3 px. A vertical edge moved by <= 3 px still matches everywhere,
    # by 4 px nowhere.
    gt = np.zeros((256, 256), np.uint8)
    gt[:, :100] = 1
    pred = np.zeros_like(gt)
    pred[:, :100 + shift] = 1
    assert boundary_f(pred, gt) == pytest.approx(expected)


def test_f_partial_match_is_harmonic_mean():
    # Square vs a square shifted 6 px right (beyond the 3 px tolerance): only the
    # horizontal edges match, and only where they overlap within tolerance.
    gt = np.zeros((256, 256), np.uint8)
    gt[100:140, 100:140] = 1
    pred = np.zeros_like(gt)
    pred[100:140, 106:146] = 1
    f = boundary_f(pred, gt)
    assert 0.3 < f < 0.8
    p = (boundary_map(pred) & _dilate(boundary_map(gt), 3)).sum() / boundary_map(pred).sum()
    r = (boundary_map(gt) & _dilate(boundary_map(pred), 3)).sum() / boundary_map(gt).sum()
    assert f == pytest.approx(2 * p * r / (p + r))


def _dilate(b: np.ndarray, r: int) -> np.ndarray:
    """Brute-force dilation by a disk of radius r, independent of OpenCV."""
    out = np.zeros_like(b)
    ys, xs = np.nonzero(b)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                yy, xx = ys + dy, xs + dx
                ok = (yy >= 0) & (yy < b.shape[0]) & (xx >= 0) & (xx < b.shape[1])
                out[yy[ok], xx[ok]] = True
    return out


def test_statistics_mean_recall_decay():
    v = np.arange(8) / 7.0
    s = statistics(v)
    assert s.mean == pytest.approx(0.5)
    assert s.recall == pytest.approx(0.5)  # 4/7 .. 7/7 are above 0.5
    # Bins at round(linspace(1, 8, 5)) - 1 = [0, 2, 4, 5, 7]: first v[0:3], last v[5:8].
    assert s.decay == pytest.approx(np.mean(v[0:3]) - np.mean(v[5:8]))
    assert statistics(np.array([1, 1, 1, .5, .5, 0, 0, 0.])).decay == pytest.approx(1.0)
    assert statistics(np.array([0.7])).decay == 0.0
    assert math.isnan(statistics(np.array([np.nan, np.nan])).mean)
