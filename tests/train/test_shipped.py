"""The shipped offline model: present, intact, the default, and as good as its model card says."""

from __future__ import annotations

import shutil

import pytest

import vos_service.weights.shipped as shipped_mod
from vos_service.config import ModelSettings
from vos_service.engine.errors import ModelConfigError
from vos_service.engine.model import build_model
from vos_service.eval.real_clicks import REAL_CASES, run_case
from vos_service.eval.tracking import HeldOutProtocol, repeat_first_frame, score_clips, track_one_click
from vos_service.train.ship import TEST_SUBSET
from vos_service.weights.selection import spec_from_settings
from vos_service.weights.shipped import WEIGHTS_DIR, shipped_model

MAX_BYTES = 20 * 1024 * 1024
MARGIN = 0.01  # CPU kernels may differ across machines; the card was measured on the same clips


@pytest.fixture(scope="module")
def nano():
    return shipped_model("nano")


@pytest.fixture(scope="module")
def nano_model(nano):
    return build_model(spec_from_settings(ModelSettings()))  # the default: no weights given


def test_shipped_weights_are_small_and_match_their_card(nano):
    assert nano.weights.stat().st_size <= MAX_BYTES
    assert nano.card["size_bytes"] == nano.weights.stat().st_size
    assert nano.config == "nano" and nano.card["params"] < 5_000_000
    assert nano.card["training"]["steps"] > 0


def test_no_weights_given_means_the_shipped_nano(nano, nano_model):
    spec = spec_from_settings(ModelSettings())
    assert spec.config == "nano" and spec.checkpoint == nano.weights and spec.random_init_seed is None
    assert spec_from_settings(ModelSettings(checkpoint="nano")) == spec  # also by name (--model nano)
    assert "RANDOM" not in nano_model.weights
    with pytest.raises(ModelConfigError, match="no weights for config .* shipped model 'nano' is a 'nano' model"):
        spec_from_settings(ModelSettings(checkpoint="nano", config="configs/sam2.1/sam2.1_hiera_t.yaml"))


def test_a_corrupt_shipped_file_is_refused(tmp_path, monkeypatch):
    for f in WEIGHTS_DIR.glob("nano.*"):
        shutil.copy(f, tmp_path / f.name)
    data = (tmp_path / "nano.pt").read_bytes()
    (tmp_path / "nano.pt").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(shipped_mod, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ModelConfigError, match="sha256"):
        shipped_mod.shipped_model("nano")
    (tmp_path / "nano.pt").unlink()
    with pytest.raises(ModelConfigError, match="missing"):
        shipped_mod.shipped_model("nano")
    with pytest.raises(ModelConfigError, match="no shipped model 'tiny'"):
        shipped_mod.shipped_model("tiny")


def test_reaches_the_model_card_jf_from_one_click_on_heldout_clips(nano, nano_model):
    card = nano.eval
    protocol = HeldOutProtocol(**{k: card["protocol"][k] for k in ("num_frames", "num_objects")},
                               size=tuple(card["protocol"]["size"]), clips=TEST_SUBSET)
    clips = protocol.clip_list()
    report = score_clips(clips, lambda c: track_one_click(nano_model, c))
    assert report.jf_mean == pytest.approx(card["test_subset"]["J&F"], abs=MARGIN)
    baseline = score_clips(clips, repeat_first_frame)
    assert report.jf_mean > baseline.jf_mean + 0.2, "far above repeating the first-frame mask"


def test_a_corrective_click_after_a_failure_sticks(nano, nano_model):
    """The card's best-helped failure, re-run: J after the correction is as recorded, and higher."""
    from vos_service.eval.metrics import region_j
    from vos_service.synth import generate_clip

    cases = nano.eval["correction"]["cases"]
    assert cases, "the card records the failures it corrected"
    case = max(cases, key=lambda c: c["j_after_with"] - c["j_after_without"])
    p = nano.eval["protocol"]
    clip = generate_clip(case["seed"], num_frames=p["num_frames"], size=tuple(p["size"]),
                         num_objects=p["num_objects"])
    oid, at = case["obj_id"], case["failed_at"]
    after = range(at + 1, len(clip.masks))

    def j_after(preds):
        return sum(region_j(preds[t] == oid, clip.masks[t] == oid) for t in after) / len(after)

    base, fixed = track_one_click(nano_model, clip), track_one_click(nano_model, clip, correct=(oid, at))
    without, with_click = j_after(base), j_after(fixed)
    assert without == pytest.approx(case["j_after_without"], abs=MARGIN)
    assert with_click == pytest.approx(case["j_after_with"], abs=MARGIN)
    assert with_click > without + 0.1
    # the clicked frame itself, as the card records it
    assert region_j(base[at] == oid, clip.masks[at] == oid) == pytest.approx(case["j_at_without"], abs=MARGIN)
    assert region_j(fixed[at] == oid, clip.masks[at] == oid) == pytest.approx(case["j_at_with"], abs=MARGIN)


def test_weights_list_shows_the_shipped_default(capsys):
    from vos_service.cli import main

    assert main(["weights", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("nano"))
    assert "(shipped, default)" in line and str(WEIGHTS_DIR / "nano.pt") in line


def test_train_eval_cli_scores_a_model_on_the_heldout_set(tmp_path, capsys):
    import json

    from vos_service.cli import main

    out = tmp_path / "eval.json"
    assert main(["train", "eval", "--model", "nano", "--clips", "2", "--json", str(out), "--no-real-clips"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["protocol"]["clips"] == 2 and result["heldout"]["objects"] == 4
    assert f"J&F {result['heldout']['J&F']:.3f}" in printed and "baseline" in printed


@pytest.mark.parametrize("case", REAL_CASES, ids=lambda c: c.video)
def test_the_card_tells_the_truth_about_real_clips(nano, nano_model, case, videos_dir):
    # One click on a real object on frame 0, hand-placed points inside it and on the nearest
    # other object on later frames (eval/real_clicks.py): re-run, the card's counts must hold.
    # Where the card says a frame held, the inside point is in the mask and the outside one not.
    card = next(r for r in nano.card["eval"]["real_clicks"] if r["video"] == case.video)
    assert run_case(nano_model, case, videos_dir).to_dict() == card
