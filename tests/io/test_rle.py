from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from vos_service.io.rle import decode_mask, encode_mask, mask_area, mask_bbox, rle_area

SHAPES = [(1, 1), (7, 13), (13, 7), (64, 64), (101, 75), (720, 1280)]


def _coco_bbox_xyxy(rle: dict) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in mask_utils.toBbox(rle))
    return x, y, x + w, y + h


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", [0.02, 0.5, 0.98])
def test_random_mask_round_trip_and_agrees_with_pycocotools(shape: tuple[int, int], density: float) -> None:
    rng = np.random.default_rng([*shape, int(density * 100)])
    mask = rng.random(shape) < density
    if not mask.any():
        mask[shape[0] // 2, shape[1] // 2] = True

    rle = encode_mask(mask)
    assert rle["size"] == list(shape)
    assert isinstance(rle["counts"], str)
    rle = json.loads(json.dumps(rle))  # survives JSON unchanged

    decoded = decode_mask(rle)
    assert decoded.dtype == np.bool_ and decoded.shape == shape
    np.testing.assert_array_equal(decoded, mask)

    assert mask_area(mask) == rle_area(rle) == int(mask_utils.area(rle)) == int(mask.sum())
    assert mask_bbox(mask) == _coco_bbox_xyxy(rle)


def test_bbox_is_inclusive_exclusive() -> None:
    mask = np.zeros((10, 20), bool)
    mask[2:5, 3:9] = True
    x0, y0, x1, y1 = mask_bbox(mask)
    assert (x0, y0, x1, y1) == (3, 2, 9, 5)
    assert mask[y0:y1, x0:x1].all() and mask_area(mask) == (x1 - x0) * (y1 - y0)


@pytest.mark.parametrize("shape", [(1, 1), (5, 9), (720, 1280)])
def test_empty_and_full_masks(shape: tuple[int, int]) -> None:
    empty = np.zeros(shape, bool)
    rle = encode_mask(empty)
    np.testing.assert_array_equal(decode_mask(rle), empty)
    assert mask_area(empty) == rle_area(rle) == 0
    assert mask_bbox(empty) is None

    full = np.ones(shape, bool)
    rle = encode_mask(full)
    np.testing.assert_array_equal(decode_mask(rle), full)
    assert rle_area(rle) == full.size
    assert mask_bbox(full) == (0, 0, shape[1], shape[0]) == _coco_bbox_xyxy(rle)


def test_zero_size_mask() -> None:
    mask = np.zeros((0, 5), bool)
    assert decode_mask(encode_mask(mask)).shape == (0, 5)
    assert mask_bbox(mask) is None


def test_non_contiguous_and_any_layout_encode_the_same() -> None:
    rng = np.random.default_rng(0)
    big = rng.random((60, 90)) < 0.3
    views = {
        "strided": big[::2, 1::3],
        "transposed": big.T,
        "fortran": np.asfortranarray(big),
        "negative_stride": big[::-1, ::-1],
    }
    for name, view in views.items():
        expected = mask_utils.encode(np.asfortranarray(np.ascontiguousarray(view), dtype=np.uint8))
        rle = encode_mask(view)
        assert rle["counts"] == expected["counts"].decode(), name
        np.testing.assert_array_equal(decode_mask(rle), view, err_msg=name)


def test_non_bool_input_is_binarised() -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[1:3, 1:3] = 1
    mask[2:6, 2:6] = 255  # 1s touching 255s must still be one foreground run
    assert encode_mask(mask) == encode_mask(mask != 0)


def test_decode_accepts_bytes_and_uncompressed_counts() -> None:
    mask = np.zeros((3, 4), bool)
    mask[:, 1] = True  # column-major: 3 off, 3 on, 6 off
    np.testing.assert_array_equal(decode_mask({"size": [3, 4], "counts": [3, 3, 6]}), mask)
    coco = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    np.testing.assert_array_equal(decode_mask(coco), mask)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        encode_mask(np.zeros((2, 3, 4), bool))
    with pytest.raises(ValueError):
        decode_mask({"counts": "abc"})
