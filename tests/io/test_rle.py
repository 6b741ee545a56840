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


# ---- untrusted RLEs ------------------------------------------------------------------------

from vos_service.io import rle as rle_module  # noqa: E402
from vos_service.io.rle import RleError, decode_untrusted, parse_counts  # noqa: E402

LIMIT = 1 << 23


def coco_numbers(nums: list[int]) -> str:
    """Numbers -> COCO chunk characters, as maskApi.c rleToString writes each one."""
    out = []
    for x in nums:
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr(48 + (c | 0x20 if more else c)))
    return "".join(out)


def coco_runs(runs: list[int]) -> str:
    """Run lengths -> COCO counts (the delta against the run two back, from the fourth on)."""
    return coco_numbers([r - runs[i - 2] if i > 2 else r for i, r in enumerate(runs)])


def reference_runs(s: str) -> list[int] | None:
    """A per-character Python port of pycocotools' rleFrString; None if s ends mid-number."""
    cnts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p == len(s):
                return None
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << 5 * k
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << 5 * k
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return cnts


@pytest.fixture()
def no_pycocotools(monkeypatch):
    """Fail the test if the rle module touches pycocotools at all."""
    class Boom:
        def __getattr__(self, name):
            raise AssertionError(f"pycocotools.{name} reached with untrusted input")
    monkeypatch.setattr(rle_module, "mask_utils", Boom())


def _coco_decode(rle: dict) -> np.ndarray:
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (7, 13), (64, 64), (101, 75), (720, 1280)])
@pytest.mark.parametrize("kind", ["random", "sparse", "empty", "full", "checkerboard", "blob"])
def test_untrusted_decode_equals_pycocotools(shape, kind):
    rng = np.random.default_rng([*shape, len(kind)])
    h, w = shape
    mask = {
        "random": lambda: rng.random(shape) < 0.5,
        "sparse": lambda: rng.random(shape) < 0.001,
        "empty": lambda: np.zeros(shape, bool),
        "full": lambda: np.ones(shape, bool),
        "checkerboard": lambda: np.indices(shape).sum(0) % 2 == 1,
        "blob": lambda: np.hypot(*(np.indices(shape) - np.array(shape)[:, None, None] / 2)) < min(shape) / 3,
    }[kind]()
    rle = encode_mask(mask)
    out = decode_untrusted(rle["size"], rle["counts"], h, w, LIMIT)
    assert out.dtype == np.bool_ and out.shape == shape and out.flags.c_contiguous
    np.testing.assert_array_equal(out, _coco_decode(rle))  # the same pixels as pycocotools
    np.testing.assert_array_equal(out, mask)
    # bytes counts and numpy / tuple sizes are fine too
    out2 = decode_untrusted((np.int64(h), np.int32(w)), rle["counts"].encode(), h, w, LIMIT)
    np.testing.assert_array_equal(out2, mask)


def test_parse_counts_matches_the_reference_parser_on_random_strings():
    rng = np.random.default_rng(7)
    alphabet = np.array([chr(c) for c in range(48, 112)])
    accepted = refused = 0
    for _ in range(3000):
        n = int(rng.integers(1, 40))
        # bias towards terminated, positive numbers (chunks 0..15) so that many strings parse
        lo = np.where(rng.random(n) < 0.9, rng.integers(0, 16, n), rng.integers(16, 32, n))
        chars = np.where(rng.random(n) < 0.7, alphabet[lo], alphabet[rng.integers(32, 64, n)])
        s = "".join(chars)
        ref = reference_runs(s)
        ok = ref is not None and min(ref) >= 0 and max(len(x) for x in _numbers_text(s)) <= 7
        if ok:
            assert parse_counts(s, LIMIT).tolist() == ref
            accepted += 1
        else:
            with pytest.raises(RleError):
                parse_counts(s, LIMIT)
            refused += 1
    assert accepted > 500 and refused > 500


def _numbers_text(s: str) -> list[str]:
    """s split into its numbers (each ends at a chunk without the continuation bit)."""
    out, cur = [], ""
    for ch in s:
        cur += ch
        if not (ord(ch) - 48) & 0x20:
            out.append(cur)
            cur = ""
    return out + ([cur] if cur else [])


def test_big_numbers_and_negative_deltas_round_trip():
    runs = [0, 2**31 - 5, 3, 2**30 + 7, 1, 2**29, 0, 5]  # deltas far below zero, 7-chunk numbers
    s = coco_runs(runs)
    assert max(len(x) for x in _numbers_text(s)) == 7
    assert parse_counts(s, LIMIT).tolist() == runs == reference_runs(s)


def test_a_4mb_counts_string_parses_fast():
    import time
    mask = np.indices((2000, 2000)).sum(0) % 2 == 0  # 4M runs of 1: ~4 MB of counts
    rle = encode_mask(mask)
    assert len(rle["counts"]) > 3_900_000
    t0 = time.perf_counter()
    out = decode_untrusted(rle["size"], rle["counts"], 2000, 2000, LIMIT)
    assert time.perf_counter() - t0 < 2.0  # ~0.1 s; generous for a loaded machine
    np.testing.assert_array_equal(out, mask)


@pytest.mark.parametrize("size, counts, match", [
    ([2147483647, 2147483647], "1", "not the frame size"),  # segfaulted pycocotools
    ([2147483647, 2147483647], "0", "not the frame size"),  # MemoryError in pycocotools
    ([16384, 16384], "0", "not the frame size"),  # 0.5 GB in pycocotools
    ([1280, 720], coco_runs([921600]), "not the frame size"),  # transposed
    ([720], "0", "got 1 values"),
    ([720, 1280, 1], "0", "got 3 values"),
    (None, "0", "size must be"),
    ([720.0, 1280], "0", "integer"),
    ([True, 1280], "0", "integer"),
    ([-720, 1280], "0", ">= 0"),
    ([720, 1280], "1", "cover 1 pixels"),
    ([720, 1280], "0", "cover 0 pixels"),
    ([720, 1280], "", "cover 0 pixels"),
    ([720, 1280], coco_runs([921599]), "cover 921599 pixels"),
    ([720, 1280], coco_runs([921600, 1]), "cover 921601 pixels"),  # would overflow pycocotools' heap
    ([720, 1280], coco_runs([0, 2**31, 2**31]), "cover"),
    ([720, 1280], coco_runs([5, 10, 20, 1]) + coco_numbers([-21]), "run 4 of counts is negative"),  # 20 - 21
    ([720, 1280], coco_numbers([10, -3]), "run 1 of counts is negative"),
    ([720, 1280], "1P", "middle of a number"),  # 'P' = chunk 32: a continuation, then nothing
    ([720, 1280], "PPPPPPP0", "8 chunks"),
    ([720, 1280], "12p", "outside COCO's alphabet"),  # chr(112)
    ([720, 1280], "1/", "outside COCO's alphabet"),  # chr(47)
    ([720, 1280], "1 2", "outside COCO's alphabet"),
    ([720, 1280], "1\x002", "outside COCO's alphabet"),
    ([720, 1280], "1é", "non-ASCII"),
    ([720, 1280], [921600], "compressed string"),  # the uncompressed list form is not accepted
    ([720, 1280], 921600, "compressed string"),
])
def test_untrusted_refusals(no_pycocotools, size, counts, match):
    with pytest.raises(RleError, match=match):
        decode_untrusted(size, counts, 720, 1280, LIMIT)


def test_counts_length_limit(no_pycocotools):
    rle = {"size": [64, 64], "counts": coco_runs([1] * 64 * 64)}
    n = len(rle["counts"])
    assert decode_untrusted(rle["size"], rle["counts"], 64, 64, n).shape == (64, 64)
    with pytest.raises(RleError, match="over the limit"):
        decode_untrusted(rle["size"], rle["counts"], 64, 64, n - 1)
    with pytest.raises(RleError, match="over the limit"):
        decode_untrusted(rle["size"], rle["counts"].encode(), 64, 64, n - 1)
    assert issubclass(RleError, ValueError)
