"""The bootstrap interval: brackets the point estimate, shrinks with more clips, is seeded."""

from __future__ import annotations

import numpy as np
import pytest

from vos_service.eval.bootstrap import bootstrap
from vos_service.eval.scores import evaluate_sequence, summarize


def _clips(n: int, seed: int):
    """n two-object sequences whose predictions are the truth eroded by a random amount."""
    rng = np.random.default_rng(seed)
    seqs = []
    for k in range(n):
        gt = np.zeros((5, 32, 32), np.uint8)
        gt[:, 4:16, 4:16], gt[:, 18:30, 18:30] = 1, 2
        pred = gt.copy()
        cut = int(rng.integers(0, 10))
        pred[:, 4:4 + cut, 4:16] = 0  # object 1 loses `cut` rows
        seqs.append(evaluate_sequence(list(pred), list(gt), name=f"c{k}", object_ids=(1, 2)))
    return seqs


def test_the_interval_brackets_the_estimate_and_narrows_with_more_clips():
    few, many = summarize(_clips(10, 1)), summarize(_clips(200, 1))
    a, b = bootstrap(few), bootstrap(many)
    assert a.low <= few.jf_mean <= a.high and b.low <= many.jf_mean <= b.high
    assert (b.high - b.low) < (a.high - a.low) and b.high - b.low > 0
    assert bootstrap(few) == a  # seeded: the card's numbers are reproducible


def test_identical_clips_have_no_spread_and_one_clip_is_refused():
    same = summarize(_clips(1, 3) * 8)
    iv = bootstrap(same, "J-Decay")
    assert iv.low == pytest.approx(iv.high)
    with pytest.raises(ValueError):
        bootstrap(summarize(_clips(1, 3)))
