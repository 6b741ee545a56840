"""The occlusion threshold calibration (train/calibrate.py) on the shipped nano weights."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from vos_service.engine.model import ModelSpec, build_model
from vos_service.engine.tracker import StreamTracker, TrackerConfig
from vos_service.engine.types import Prompt
from vos_service.eval.tracking import HeldOutProtocol, center_click
from vos_service.synth import TEST_SEED_START, VAL_SEED_START
from vos_service.train.calibrate import (
    BIAS_KEY,
    FIRST_SEED,
    Calibration,
    CalibrationPlan,
    calibrate_occlusion,
    shift_weights,
)
from vos_service.train.ship import ShipRefused, calibrate_shipped, rescore
from vos_service.weights.cards import read_card, write_card
from vos_service.weights.shipped import WEIGHTS_DIR

SMALL = HeldOutProtocol(clips=2, num_frames=8, first_seed=FIRST_SEED)  # validation seeds


def first_frame_scores(weights) -> list[float]:
    clip = SMALL.clip_list(1)[0]
    tracker = StreamTracker(build_model(ModelSpec("nano", checkpoint=weights)), TrackerConfig())
    tracker.track(clip.frames[0])
    result = None
    for oid in clip.object_ids:
        x, y = center_click(clip.masks[0] == oid)
        result = tracker.add_prompt(oid, Prompt.from_points([[x, y]], [1]))[0]
    assert result is not None
    return [o.score for o in sorted(result.objects, key=lambda o: o.obj_id)]


def test_a_shift_lowers_the_occlusion_logit_by_exactly_that_much(tmp_path):
    shifted = tmp_path / "nano.pt"
    shutil.copyfile(WEIGHTS_DIR / "nano.pt", shifted)
    shift_weights(shifted, Calibration(1.5, 2, FIRST_SEED, {0.0: 0.4, 1.5: 0.5}))
    before = torch.load(WEIGHTS_DIR / "nano.pt", weights_only=True)
    after = torch.load(shifted, weights_only=True)
    assert [k for k, v in before["model"].items() if not torch.equal(v, after["model"][k])] == [BIAS_KEY]
    assert after["meta"]["calibration"]["shift"] == 1.5 and after["meta"]["steps"] == before["meta"]["steps"]
    # the prompted frame's decode is the same but for the head's bias: every logit 1.5 lower
    assert first_frame_scores(shifted) == pytest.approx([s - 1.5 for s in first_frame_scores(WEIGHTS_DIR / "nano.pt")],
                                                        abs=1e-4)


def test_calibration_picks_the_best_validation_shift_and_leaves_the_model_as_it_was():
    model = build_model(ModelSpec("nano", checkpoint=WEIGHTS_DIR / "nano.pt"))
    original = dict(model.sam.named_parameters())[BIAS_KEY].detach().clone()
    cal = calibrate_occlusion(model, CalibrationPlan(shifts=(0.0, 2.0, 8.0), clips=SMALL))
    assert set(cal.jf_by_shift) == {0.0, 2.0, 8.0} and (cal.clips, cal.first_seed) == (2, FIRST_SEED)
    assert cal.jf_by_shift[cal.shift] == max(cal.jf_by_shift.values())
    # a threshold of 8 calls nearly every present object gone: the shifts really are applied
    assert cal.jf_by_shift[8.0] < cal.jf_by_shift[0.0] - 0.2
    assert torch.equal(dict(model.sam.named_parameters())[BIAS_KEY], original)
    for seeds in (HeldOutProtocol(clips=2, first_seed=TEST_SEED_START - 1), HeldOutProtocol(clips=2, first_seed=1)):
        with pytest.raises(ValueError, match="validation seeds"):
            calibrate_occlusion(model, CalibrationPlan(clips=seeds))
    assert FIRST_SEED >= VAL_SEED_START + 100  # past the trainer's monitor clips and the v3 comparison set


def test_calibration_tries_past_the_grid_while_its_edge_is_the_best():
    model = build_model(ModelSpec("nano", checkpoint=WEIGHTS_DIR / "nano.pt"))
    # a one-shift grid: that shift is its edge and the best, so the next one (0.5 on) is tried, and so on until
    # a shift loses to the one before it or the cap is reached
    cal = calibrate_occlusion(model, CalibrationPlan(shifts=(-1.0,), extend_to=0.0, clips=SMALL))
    tried = sorted(cal.jf_by_shift)
    assert tried[:2] == [-1.0, -0.5] and tried[-1] <= 0.0
    assert tried == [x / 2 for x in range(-2, int(tried[-1] * 2) + 1)]  # steps of 0.5, none skipped
    edge = tried[-1]
    assert edge == 0.0 or cal.jf_by_shift[edge] <= max(cal.jf_by_shift[s] for s in tried[:-1])
    assert cal.shift == max(tried, key=lambda s: (cal.jf_by_shift[s], -s))


def test_a_shipped_model_is_replaced_only_by_a_calibration_that_beats_its_card(tmp_path):
    shutil.copyfile(WEIGHTS_DIR / "nano.pt", tmp_path / "nano.pt")
    shutil.copyfile(WEIGHTS_DIR / "nano.json", tmp_path / "nano.json")
    heldout = HeldOutProtocol(clips=2, num_frames=8)
    rescore("nano", tmp_path, heldout, real_clips=False)  # the card on a small protocol: the gate compares alike
    card = read_card(tmp_path / "nano.json")
    card.pop("calibration", None)  # the shipped weights may be calibrated already: here they count as trained only
    write_card(tmp_path / "nano.json", card)
    weights = (tmp_path / "nano.pt").read_bytes()
    with pytest.raises(ShipRefused, match="does not beat"):  # shift 0 only: the same weights score the same
        calibrate_shipped("nano", tmp_path, heldout, real_clips=False,
                          plan=CalibrationPlan((0.0,), SMALL, extend_to=0.0))
    assert (tmp_path / "nano.pt").read_bytes() == weights and not list(tmp_path.glob(".*candidate*"))

    card["eval"]["heldout"]["J&F"] = -1.0  # a bar any candidate clears: the gate lets it through
    write_card(tmp_path / "nano.json", card)
    new = calibrate_shipped("nano", tmp_path, heldout, real_clips=False, plan=CalibrationPlan((8.0,), SMALL))
    assert new["calibration"]["shift"] == 8.0 and new["training"] == card["training"]
    assert new["sha256"] == hashlib.sha256((tmp_path / "nano.pt").read_bytes()).hexdigest() != card["sha256"]
    assert new["eval"]["heldout"]["J&F"] != card["eval"]["heldout"]["J&F"]
    with pytest.raises(ShipRefused, match="calibrated already"):
        calibrate_shipped("nano", tmp_path, heldout, real_clips=False, plan=CalibrationPlan((0.0,), SMALL))
