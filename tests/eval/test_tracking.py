"""Clicking, correcting and scoring a tracker on synthetic clips."""

from __future__ import annotations

import numpy as np
import pytest

from vos_service.engine.types import FrameResult, ObjectResult
from vos_service.eval.tracking import (
    HeldOutProtocol,
    center_click,
    corrective_click,
    id_map,
    repeat_first_frame,
    score_clips,
)
from vos_service.synth import TEST_SEED_START


def _disk(cx, cy, r, shape=(64, 64)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_center_click_is_the_deepest_interior_point():
    x, y = center_click(_disk(20, 30, 8))
    assert (x, y) == (20.5, 30.5)
    ring = _disk(32, 32, 20) & ~_disk(32, 32, 6)
    x, y = center_click(ring)
    assert ring[int(y), int(x)]
    with pytest.raises(ValueError):
        center_click(np.zeros((8, 8), bool))


def test_corrective_click_goes_where_the_error_is_largest():
    gt = _disk(20, 20, 10)
    missed = corrective_click(gt & ~_disk(20, 20, 10) | _disk(20, 20, 3), gt)  # most of the object missed
    assert missed.labels.tolist() == [1] and gt[int(missed.points[0, 1]), int(missed.points[0, 0])]
    extra = corrective_click(gt | _disk(50, 50, 9), gt)  # a false blob far away
    assert extra.labels.tolist() == [0] and np.hypot(*(extra.points[0] - 50.5)) < 1.5


def _obj(oid, mask, score, visible=True):
    return ObjectResult(obj_id=oid, mask=mask, score=score, visible=visible, iou=1.0, box=None, revision=0)


def test_id_map_resolves_overlaps_by_score_and_drops_hidden_objects():
    a, b = _disk(20, 20, 10), _disk(28, 20, 10)
    r = FrameResult(0, [_obj(1, a, 5.0), _obj(2, b, 1.0), _obj(3, _disk(50, 50, 5), -2.0, visible=False)])
    m = id_map(r, (64, 64))
    assert (m[a] == 1).all() and (m[b & ~a] == 2).all() and (m == 3).sum() == 0


def test_heldout_protocol_uses_only_test_seeds_and_the_baseline_scores_below_perfect():
    clips = HeldOutProtocol(clips=2, num_frames=6).clip_list()
    assert [c.meta.seed for c in clips] == [TEST_SEED_START, TEST_SEED_START + 1]
    perfect = score_clips(clips, lambda c: c.masks)
    assert perfect.jf_mean == pytest.approx(1.0)
    assert score_clips(clips, repeat_first_frame).jf_mean < 0.9
