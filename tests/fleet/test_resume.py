"""Re-seeding from Redis' newest masklet, and the client's backoff: the pure parts."""

from __future__ import annotations

import numpy as np
import pytest

from vos_service.client import Backoff
from vos_service.fleet.resume import resume_prompts
from vos_service.io.rle import encode_mask
from vos_service.publish.schema import MaskletMessage, ObjectMasklet


def _mask(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_visible_objects_become_mask_prompts_and_the_rest_is_skipped_or_left_out():
    a, b = _mask(36, 64, 2, 10, 3, 20), _mask(36, 64, 20, 30, 40, 60)
    last = MaskletMessage("cam", 41, (
        ObjectMasklet(1, encode_mask(a)),
        ObjectMasklet(2, encode_mask(b), visible=False),            # hidden: nothing to seed
        ObjectMasklet(3, encode_mask(_mask(72, 128, 0, 5, 0, 5))),  # another frame size: skipped
        ObjectMasklet(4, encode_mask(np.zeros((36, 64), bool))),    # empty: nothing to seed
    ))
    got = resume_prompts(MaskletMessage.from_fields(last.to_fields()), 36, 64, 1 << 20)
    assert got.from_frame == 41 and got.skipped == (3,)
    assert [p.obj_id for p in got.prompts] == [1]
    assert np.array_equal(got.prompts[0].prompt.mask, a) and got.prompts[0].frame_index is None


def test_nothing_to_resume_without_a_masklet():
    assert resume_prompts(None, 36, 64, 1 << 20) is None


def test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half():
    b = Backoff(initial_s=0.1, max_s=1.0)
    assert [b.delay(n, 0.999999) for n in (1, 2, 3, 4, 5, 9)] == \
        [pytest.approx(x, rel=1e-5) for x in (0.1, 0.2, 0.4, 0.8, 1.0, 1.0)]
    assert b.delay(1, 0.0) == 0.05 and b.delay(9, 0.0) == 0.5

