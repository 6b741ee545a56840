"""The "repeat the first-frame mask" baseline on synthetic clips scores far below 1."""

from __future__ import annotations

from vos_service.eval import evaluate_sequence, summarize
from vos_service.synth import SynthOptions, generate_clip

OPTS = SynthOptions(real_patch_prob=0.0, real_background_prob=0.0, videos_dir=None)


def test_repeat_first_mask_baseline_is_clearly_below_one():
    scores = []
    for seed in range(4):
        clip = generate_clip(seed, num_frames=24, size=(128, 128), num_objects=2, options=OPTS)
        oracle = evaluate_sequence(clip.masks, clip.masks)
        assert oracle.jf_mean == 1.0
        scores.append(evaluate_sequence([clip.masks[0]] * clip.num_frames, clip.masks, name=str(seed)))
    report = summarize(scores)
    assert report.jf_mean < 0.6, report.jf_mean
    assert report.j_decay > 0  # it is right at the start and drifts off
