"""Untrusted RLEs: refused before pycocotools unless they describe exactly a mask of the frame size.

Differential: whatever decode_untrusted accepts, pycocotools decodes to the same mask (then it is
safe to hand it over); whatever it refuses raises RleError, never anything else.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vos_service.io.rle import decode_mask, encode_mask
from vos_service.io.rle_check import RleError, decode_untrusted, parse_counts

LIMIT = 1 << 20


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (37, 100), (720, 1280)])
@pytest.mark.parametrize("p", [0.0, 0.02, 0.5, 1.0])
def test_valid_masks_decode_like_pycocotools(shape, p):
    m = np.random.default_rng(0).random(shape) < p
    rle = encode_mask(m)
    out = decode_untrusted(rle["size"], rle["counts"], *shape, LIMIT)
    assert out.dtype == np.bool_ and out.shape == shape and (out == m).all() and (out == decode_mask(rle)).all()


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.text(alphabet=[chr(c) for c in range(40, 120)], max_size=40))
def test_any_counts_string_is_refused_or_decodes_like_pycocotools(h, w, counts):
    try:
        out = decode_untrusted([h, w], counts, h, w, LIMIT)
    except RleError:
        return
    assert (out == decode_mask({"size": [h, w], "counts": counts})).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=64).flatmap(
    lambda bits: st.tuples(st.just(bits), st.sampled_from([d for d in range(1, len(bits) + 1) if len(bits) % d == 0]))))
def test_random_masks_round_trip(case):
    bits, h = case
    m = np.array(bits, bool).reshape(h, -1)
    rle = encode_mask(m)
    assert (decode_untrusted(rle["size"], rle["counts"], *m.shape, LIMIT) == m).all()


@pytest.mark.parametrize("size,counts,why", [
    ([2 ** 31 - 1, 2 ** 31 - 1], "1", "not the frame size"),  # segfaulted pycocotools
    ([2 ** 31 - 1, 2 ** 31 - 1], "0", "not the frame size"),  # MemoryError
    ([16384, 16384], "0", "not the frame size"),  # 0.5 GB on the event loop
    ([4, 4], "0", "covers 0 pixels"),
    ([4, 4], "", "empty"),
    ([4, 4], "9:", "covers 19 pixels"),  # more than h*w: pycocotools would write past the buffer
    ([4, 4], "o", "middle of a number"),
    ([4, 4], "4\x7f", "alphabet"),
    ([4, 4], "ooooooo0", "more than 7 chunks"),
    ([4, 4], "411@", "negative run"),  # a delta that takes a run below zero
    ([4, 4], "@", "negative run"),
    ([4], "4", "size must be"),
    (["a", "b"], "4", "size must be"),
])
def test_hostile_rles_are_refused(size, counts, why):
    with pytest.raises(RleError, match=why):
        decode_untrusted(size, counts, 4, 4, LIMIT)


def test_counts_over_the_limit_are_refused_before_parsing():
    with pytest.raises(RleError, match="over the limit"):
        parse_counts("0" * 101, max_len=100)


def test_a_4mb_counts_string_parses():
    m = np.indices((2000, 2000)).sum(0) % 2 == 0  # 4 M runs: the worst case for its size
    rle = encode_mask(m)
    assert len(rle["counts"]) > 3_900_000
    assert (decode_untrusted(rle["size"], rle["counts"], 2000, 2000, 8 << 20) == m).all()


def test_the_crash_input_really_crashes_pycocotools_alone():
    """Why the checks exist: the 40-byte RLE kills a process that hands it to pycocotools (run in a
    child, so the suite survives), while decode_untrusted refuses it."""
    code = ("from pycocotools import mask; "
            "mask.decode({'size': [2147483647, 2147483647], 'counts': b'1'})")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode != 0
    with pytest.raises(RleError):
        decode_untrusted([2 ** 31 - 1, 2 ** 31 - 1], "1", 720, 1280, LIMIT)
