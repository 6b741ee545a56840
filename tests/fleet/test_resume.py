"""Re-seeding from Redis' newest masklets, and the client's backoff: the pure parts."""

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
    got = resume_prompts([MaskletMessage.from_fields(last.to_fields())], 36, 64, 1 << 20)
    assert got.from_frame == 41 and got.skipped == (3,) and got.earlier == ()
    assert [p.obj_id for p in got.prompts] == [1]
    assert np.array_equal(got.prompts[0].prompt.mask, a) and got.prompts[0].frame_index is None


def test_an_object_hidden_at_the_failure_is_seeded_from_where_it_was_last_seen():
    a, old_b, newer_b = _mask(36, 64, 2, 10, 3, 20), _mask(36, 64, 20, 30, 40, 60), _mask(36, 64, 21, 31, 41, 61)
    b_hidden = ObjectMasklet(2, encode_mask(np.zeros((36, 64), bool)), visible=False)
    recent = [  # newest first, as XREVRANGE reads them
        MaskletMessage("cam", 41, (ObjectMasklet(1, encode_mask(a)), b_hidden)),
        MaskletMessage("cam", 40, (ObjectMasklet(1, encode_mask(a)), b_hidden)),
        MaskletMessage("cam", 39, (ObjectMasklet(1, encode_mask(a)), ObjectMasklet(2, encode_mask(newer_b)),
                                   ObjectMasklet(5, encode_mask(a)))),  # 5 was removed since: not resumed
        MaskletMessage("cam", 38, (ObjectMasklet(2, encode_mask(old_b)),)),
    ]
    got = resume_prompts([MaskletMessage.from_fields(m.to_fields()) for m in recent], 36, 64, 1 << 20)
    assert got.from_frame == 41 and [p.obj_id for p in got.prompts] == [1, 2] and got.earlier == ((2, 39),)
    assert np.array_equal(got.prompts[1].prompt.mask, newer_b)  # its newest visible mask, not an older one
    never = [MaskletMessage("cam", 41, (b_hidden,))]  # hidden through the whole look-back: nothing to seed
    assert resume_prompts(never, 36, 64, 1 << 20).prompts == ()


def test_nothing_to_resume_without_a_masklet():
    assert resume_prompts([], 36, 64, 1 << 20) is None


def test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half():
    b = Backoff(initial_s=0.1, max_s=1.0)
    assert [b.delay(n, 0.999999) for n in (1, 2, 3, 4, 5, 9)] == \
        [pytest.approx(x, rel=1e-5) for x in (0.1, 0.2, 0.4, 0.8, 1.0, 1.0)]
    assert b.delay(1, 0.0) == 0.05 and b.delay(9, 0.0) == 0.5

