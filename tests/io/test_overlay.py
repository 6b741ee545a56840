from __future__ import annotations

import cv2
import numpy as np
import pytest

from vos_service.io.overlay import draw_overlay, object_color
from vos_service.io.rle import mask_bbox


def _two_masks(h: int, w: int) -> list[tuple[int, np.ndarray]]:
    rect = np.zeros((h, w), bool)
    rect[100:300, 200:500] = True
    ellipse = np.zeros((h, w), np.uint8)
    cv2.ellipse(ellipse, (900, 450), (150, 90), 0, 0, 360, 1, thickness=-1)
    return [(1, rect), (7, ellipse.astype(bool))]


def test_only_mask_pixels_change_without_outline_or_label(dog_frames: list[np.ndarray]) -> None:
    rgb = dog_frames[0]
    before = rgb.copy()
    masks = _two_masks(*rgb.shape[:2])

    out = draw_overlay(rgb, masks, alpha=0.5, contour_thickness=0, label=False)

    assert out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(rgb, before)  # input untouched
    union = masks[0][1] | masks[1][1]
    np.testing.assert_array_equal(out[~union], rgb[~union])
    changed = np.any(out != rgb, axis=-1)
    assert changed[union].mean() > 0.99
    # Tint pulls each object's pixels halfway towards its colour.
    for obj_id, mask in masks:
        expected = rgb[mask].astype(np.float32) * 0.5 + np.float32(object_color(obj_id)) * 0.5
        assert np.abs(out[mask].astype(np.float32) - expected).max() <= 1.0


def test_outline_and_label_stay_near_the_objects(dog_frames: list[np.ndarray]) -> None:
    rgb = dog_frames[0]
    masks = _two_masks(*rgb.shape[:2])

    out = draw_overlay(rgb, masks)

    # The outline straddles the border; the label sits in the box's corner,
    # which for the ellipse is outside the mask itself.
    near = np.zeros(rgb.shape[:2], bool)
    for _, mask in masks:
        x0, y0, x1, y1 = mask_bbox(mask)
        near[max(y0 - 4, 0) : y1 + 4, max(x0 - 4, 0) : x1 + 4] = True
    np.testing.assert_array_equal(out[~near], rgb[~near])
    union = masks[0][1] | masks[1][1]
    assert np.any(out != rgb, axis=-1)[union].mean() > 0.99


def test_alpha_zero_keeps_mask_pixels() -> None:
    rgb = np.full((40, 60, 3), 128, np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:30, 10:50] = True
    out = draw_overlay(rgb, [(3, mask)], alpha=0.0, contour_thickness=0, label=False)
    np.testing.assert_array_equal(out, rgb)


def test_object_colours_are_stable_and_distinct() -> None:
    colours = [object_color(i) for i in range(32)]
    assert colours == [object_color(i) for i in range(32)]
    assert len(set(colours)) == 32
    for c in colours:
        assert all(0 <= v <= 255 for v in c)


def test_rejects_mismatched_mask_and_bad_frame() -> None:
    rgb = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError):
        draw_overlay(rgb, [(1, np.zeros((10, 11), bool))])
    with pytest.raises(ValueError):
        draw_overlay(rgb.astype(np.float32), [])
