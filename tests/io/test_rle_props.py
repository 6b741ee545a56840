"""Untrusted RLEs, property-based (test_rle.py has the cases): differential against pycocotools.

 whatever decode_untrusted accepts, pycocotools decodes to the same mask (then it is
safe to hand it over); whatever it refuses raises RleError, never anything else.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vos_service.io.rle import RleError, decode_mask, decode_untrusted

LIMIT = 1 << 20


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.text(alphabet=[chr(c) for c in range(40, 120)], max_size=40))
def test_any_counts_string_is_refused_or_decodes_like_pycocotools(h, w, counts):
    try:
        out = decode_untrusted([h, w], counts, h, w, LIMIT)
    except RleError:
        return
    assert (out == decode_mask({"size": [h, w], "counts": counts})).all()


def test_the_crash_input_really_crashes_pycocotools_alone():
    """Why the checks exist: the 40-byte RLE kills a process that hands it to pycocotools (run in a
    child, so the suite survives), while decode_untrusted refuses it."""
    code = ("from pycocotools import mask; "
            "mask.decode({'size': [2147483647, 2147483647], 'counts': b'1'})")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode != 0
    with pytest.raises(RleError):
        decode_untrusted([2 ** 31 - 1, 2 ** 31 - 1], "1", 720, 1280, LIMIT)
