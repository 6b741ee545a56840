"""A fine-tune averaged with the weights it started from (train/average.py), and fine-tuning from a
calibrated (shipped) file: both act on the occlusion head as trained, not as shifted at the ship."""

from __future__ import annotations

import pytest
import torch

from vos_service.train import TrainConfig, Trainer, export_weights
from vos_service.train.calibrate import BIAS_KEY, Calibration, shift_weights
from vos_service.train.trainer import BEST, CHECKPOINT, LOG

TINY = TrainConfig(steps=2, clips_per_step=1, frames_per_clip=3, max_objects=2, correction_points=1,
                   warmup_steps=1, log_every=1, checkpoint_every=1)


@pytest.fixture(scope="module")
def fine_tune(tmp_path_factory):
    """A shipped-like start (weights file, calibrated by 1.5) and a 2-step fine-tune of it."""
    d = tmp_path_factory.mktemp("avg")
    Trainer(d / "scratch", TrainConfig(**{**TINY.to_dict(), "steps": 1})).run(progress=False, workers=0)
    start = d / "start.pt"
    export_weights(d / "scratch" / CHECKPOINT, start)
    trained = torch.load(start, weights_only=True)["model"]
    shift_weights(start, Calibration(1.5, 24, 900200, {0.0: 0.5, 1.5: 0.6}))
    t = Trainer(d / "ft", TrainConfig(**{**TINY.to_dict(), "seed": 3, "init_from": str(start)}))
    initial = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.run(progress=False, workers=0)
    return d, start, trained, initial


def test_a_fine_tune_from_a_calibrated_file_starts_from_the_head_as_trained(fine_tune):
    _, start, trained, initial = fine_tune
    shipped = torch.load(start, weights_only=True)["model"]
    assert torch.allclose(shipped[BIAS_KEY], trained[BIAS_KEY] - 1.5)  # the file is shifted...
    assert torch.allclose(initial[BIAS_KEY], trained[BIAS_KEY], atol=1e-6)  # ...the fine-tune's start is not
    assert all(torch.equal(initial[k], v) for k, v in trained.items() if k != BIAS_KEY)


def test_the_average_is_that_mix_of_the_run_and_its_start_and_ships_with_its_history(fine_tune, tmp_path):
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.average import average_with_init
    from vos_service.train.ship import ship
    from vos_service.weights.cards import card_markdown

    d, start, trained, _ = fine_tune
    out = average_with_init(d / "ft", tmp_path / "avg", 0.25, CHECKPOINT)
    tuned = torch.load(d / "ft" / CHECKPOINT, weights_only=True)["model"]
    mixed = torch.load(out, weights_only=True)["model"]
    for k, v in tuned.items():  # the start's calibration undone, then 0.75 of it and 0.25 of the run
        torch.testing.assert_close(mixed[k], 0.75 * trained[k] + 0.25 * v, rtol=0, atol=1e-6, msg=k)
    assert (tmp_path / "avg" / LOG).read_text() == (d / "ft" / LOG).read_text()
    with pytest.raises(FileExistsError):
        average_with_init(d / "ft", tmp_path / "avg", 0.5, CHECKPOINT)
    card = ship(tmp_path / "avg", "m", tmp_path / "w", HeldOutProtocol(clips=2, num_frames=4), real_clips=False,
                checkpoint=BEST)
    assert card["training"]["config"]["average"] == {"weight": 0.25, "checkpoint": CHECKPOINT, "with": str(start)}
    assert "averaged with its initial weights (0.25 of its own, 0.75 of those)" in card_markdown(card)


def test_only_a_fine_tune_can_be_averaged_and_only_by_a_share_between_0_and_1(fine_tune, tmp_path):
    from vos_service.train.average import average_with_init

    d, _, _, _ = fine_tune
    with pytest.raises(ValueError, match="from scratch"):
        average_with_init(d / "scratch", tmp_path / "a", 0.5, CHECKPOINT)
    for w in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="strictly between"):
            average_with_init(d / "ft", tmp_path / "b", w, CHECKPOINT)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
