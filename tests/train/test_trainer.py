"""The training loop: data order, a real optimisation step, exact resume, export into the engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vos_service.engine.model import ModelSpec, build_model
from vos_service.synth import TEST_SEED_START, VAL_SEED_START, generate_clip
from vos_service.train import TrainConfig, Trainer, export_weights
from vos_service.train.data import plan_step, to_batch
from vos_service.train.trainer import CHECKPOINT, LOG, lr_at

# Small enough for a CI step: one image step (two single-frame clips), then clips of three
# frames; one correction click.
TINY = TrainConfig(steps=3, clips_per_step=1, frames_per_clip=3, max_objects=2, correction_points=1,
                   image_steps=1, image_clips_per_step=2, warmup_steps=1, log_every=1, checkpoint_every=1)


def test_data_order_is_a_function_of_the_step_and_never_touches_the_test_set():
    assert plan_step(0, 5, 2, 3) == plan_step(0, 5, 2, 3)
    assert plan_step(0, 5, 2, 3) != plan_step(0, 6, 2, 3)
    assert plan_step(0, 5, 2, 3) != plan_step(1, 5, 2, 3)
    seeds = [p.seed for s in range(0, 2_000_000, 997) for p in plan_step(3, s, 4, 3)]
    assert max(seeds) < VAL_SEED_START < TEST_SEED_START
    assert {p.num_objects for s in range(50) for p in plan_step(0, s, 2, 3)} == {1, 2, 3}


def test_config_rejects_settings_sam2train_cannot_run():
    for bad in (dict(correction_points=0), dict(frames_per_clip=0), dict(lr=0.0), dict(image_steps=-1)):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_curriculum_starts_with_single_frame_images():
    assert TINY.batch_shape(0) == (2, 1)
    assert TINY.batch_shape(1) == (1, 3)
    with pytest.raises(ValueError):
        plan_step(0, 0, 65, 3)
    # each step owns its own block of seeds, whatever its batch shape
    a = {p.seed for p in plan_step(0, 0, 8, 3)}
    assert not a & {p.seed for p in plan_step(0, 1, 8, 3)}


def test_batch_layout_matches_sam2train():
    clips = [generate_clip(1, num_frames=3, num_objects=2), generate_clip(2, num_frames=3, num_objects=1)]
    b = to_batch(clips)
    assert b.img_batch.shape == (3, 2, 3, 256, 256)
    assert b.masks.shape == (3, 3, 256, 256) and b.masks.dtype == torch.bool
    # object 3 of the batch is clip 1's object 1, on image (t, video 1)
    assert b.obj_to_frame_idx[2, 2].tolist() == [2, 1]
    assert torch.equal(b.masks[2, 2], torch.from_numpy(clips[1].masks[2] == 1))
    assert torch.equal(b.masks[0, 1], torch.from_numpy(clips[0].masks[0] == 2))
    assert b.flat_img_batch.shape == (6, 3, 256, 256)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(cfg, 0) == pytest.approx(1e-4)
    assert lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 100) == pytest.approx(1e-4)
    assert lr_at(cfg, 55) < lr_at(cfg, 20)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """Three steps without interruption."""
    run = tmp_path_factory.mktemp("straight")
    t = Trainer(run, TINY)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.run(progress=False, workers=0)
    return run, t, before


def test_training_steps_change_the_weights_and_log_finite_losses(straight_run):
    run, t, before = straight_run
    assert t.step == 3
    after = t.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > 0.9 * len(before), "most parameters receive gradients"
    log = [json.loads(line) for line in (run / LOG).read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(np.isfinite(r["core_loss"]) and r["core_loss"] > 0 for r in log)
    assert (run / CHECKPOINT).is_file()


def test_resume_repeats_an_uninterrupted_run_exactly(straight_run, tmp_path):
    _, straight, _ = straight_run
    first = Trainer(tmp_path, TINY)
    first.run(until_step=2, progress=False, workers=0)
    resumed = Trainer(tmp_path)  # a new process would do the same: config and state from last.pt
    assert resumed.step == 2
    resumed.run(progress=False, workers=0)
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=1e-6, msg=k)


def test_a_run_stopped_between_checkpoints_does_not_log_steps_twice(tmp_path):
    cfg = TrainConfig(**{**TINY.to_dict(), "checkpoint_every": 2})
    Trainer(tmp_path, cfg).run(until_step=2, progress=False, workers=0)
    at_2 = (tmp_path / CHECKPOINT).read_bytes()
    Trainer(tmp_path).run(progress=False, workers=0)
    (tmp_path / CHECKPOINT).write_bytes(at_2)  # killed after logging step 3, before its checkpoint
    with open(tmp_path / LOG, "a") as log:
        log.write('{"step": 4, "core_lo')  # ... and in the middle of writing the next line
    resumed = Trainer(tmp_path)
    assert resumed.step == 2
    resumed.run(progress=False, workers=0)
    assert [json.loads(line)["step"] for line in (tmp_path / LOG).read_text().splitlines()] == [1, 2, 3]


def test_resume_may_extend_the_schedule(straight_run, tmp_path):
    run, _, _ = straight_run
    t = Trainer(run, TrainConfig(steps=10))
    assert t.step == 3 and t.cfg.steps == 10 and t.cfg.frames_per_clip == TINY.frames_per_clip


def test_the_command_that_started_a_run_resumes_it_and_a_changed_setting_is_refused(straight_run, tmp_path, capsys):
    import shutil

    from vos_service.cli.exit_codes import ExitCode
    from vos_service.cli.main import main

    run = tmp_path / "run"
    shutil.copytree(straight_run[0], run)
    same = ["train", "run", str(run), "--steps", str(TINY.steps), "--lr", str(TINY.lr), "--frames-per-clip",
            str(TINY.frames_per_clip), "--workers", "0", "--no-progress"]
    assert main(same) == 0
    assert f"resuming {run} at step {TINY.steps}" in capsys.readouterr().out
    assert main(same[:5] + ["--lr", "0.5", "--frames-per-clip", "4"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"--lr 0.5 (the run has {TINY.lr})" in err
    assert f"--frames-per-clip 4 (the run has {TINY.frames_per_clip})" in err


def test_exported_weights_load_strictly_into_the_engine(straight_run, tmp_path):
    run, t, _ = straight_run
    meta = export_weights(run / CHECKPOINT, tmp_path / "w.pt")
    assert meta["steps"] == 3 and meta["arch"] == "nano"
    loaded = build_model(ModelSpec("nano", checkpoint=tmp_path / "w.pt"))
    for k, v in t.model.state_dict().items():
        assert torch.equal(loaded.sam.state_dict()[k], v), k


def test_a_fine_tune_starts_from_the_given_weights_and_logs_validation_jf(straight_run, tmp_path):
    run, _, _ = straight_run
    start = tmp_path / "start.pt"
    export_weights(run / CHECKPOINT, start)  # any engine weights file will do
    cfg = TrainConfig(**{**TINY.to_dict(), "seed": 7, "init_from": str(start), "val_every": 2, "val_clips": 1})
    t = Trainer(tmp_path / "ft", cfg)
    given = torch.load(start, weights_only=True)["model"]
    assert all(torch.equal(v, given[k]) for k, v in t.model.state_dict().items())
    t.run(progress=False, workers=0)
    val = [r for r in map(json.loads, (tmp_path / "ft" / LOG).read_text().splitlines()) if "val_J&F" in r]
    # Every --val-every steps, and the schedule's last step although 2 does not divide 3: that is what ships.
    assert [r["step"] for r in val] == [2, 3] and all(0.0 <= r["val_J&F"] <= 1.0 for r in val)
    assert not (tmp_path / "ft" / "val.pt").exists()


def test_the_best_validation_step_is_kept_and_can_be_shipped(straight_run, tmp_path):
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.ship import ship
    from vos_service.train.trainer import BEST

    run, _, _ = straight_run
    start = tmp_path / "start.pt"
    export_weights(run / CHECKPOINT, start)
    cfg = TrainConfig(**{**TINY.to_dict(), "seed": 7, "init_from": str(start), "val_every": 1, "val_clips": 1})
    t = Trainer(tmp_path / "ft", cfg)
    t.run(progress=False, workers=0)
    val = [r for r in map(json.loads, (tmp_path / "ft" / LOG).read_text().splitlines()) if "val_J&F" in r]
    assert [r["step"] for r in val] == list(range(1, cfg.steps + 1))
    peak = max(val, key=lambda r: r["val_J&F"])  # the first of equal peaks: only a better score replaces it
    best = torch.load(tmp_path / "ft" / BEST, weights_only=True)
    last = torch.load(tmp_path / "ft" / CHECKPOINT, weights_only=True)
    assert best["step"] == peak["step"] and best["val_J&F"] == peak["val_J&F"] and "optimizer" not in best
    same = all(torch.equal(v, last["model"][k]) for k, v in best["model"].items())
    assert same == (peak["step"] == cfg.steps)  # the peak's own weights, not the last step's
    card = ship(tmp_path / "ft", out_dir=tmp_path / "w", protocol=HeldOutProtocol(clips=2, num_frames=4),
                real_clips=False, checkpoint=BEST)
    assert card["training"]["steps"] == peak["step"]


def test_a_fine_tune_from_weights_of_another_architecture_fails_loudly(tmp_path):
    from vos_service.engine.model import ModelConfigError

    bad = tmp_path / "bad.pt"
    torch.save({"model": {"not_a_parameter": torch.zeros(1)}}, bad)
    with pytest.raises(ModelConfigError):
        Trainer(tmp_path / "ft", TrainConfig(**{**TINY.to_dict(), "init_from": str(bad)}))


def test_ship_replaces_a_model_only_when_the_candidate_beats_its_card(straight_run, tmp_path):
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.ship import ShipRefused, ship

    run, _, _ = straight_run
    small = HeldOutProtocol(clips=2, num_frames=4)
    card = ship(run, "m", tmp_path, small, real_clips=False)  # nothing to beat yet
    lo, hi = card["eval"]["heldout"]["J&F_ci95"]
    assert lo <= card["eval"]["heldout"]["J&F"] <= hi
    before = (tmp_path / "m.pt").read_bytes()
    with pytest.raises(ShipRefused, match="does not beat"):
        ship(run, "m", tmp_path, small, real_clips=False)  # the same weights score the same: not better
    with pytest.raises(ShipRefused, match="re-score it first"):
        ship(run, "m", tmp_path, HeldOutProtocol(clips=3, num_frames=4), real_clips=False)
    assert (tmp_path / "m.pt").read_bytes() == before and not list(tmp_path.glob(".*candidate*"))
    again = ship(run, "m", tmp_path, small, force=True, real_clips=False)
    assert again["sha256"] == card["sha256"]
    # the card keeps the chain of runs behind the weights, this one last
    assert again["training"]["history"][-1]["steps"] == TINY.steps


def test_strided_clips_and_data_presets():
    from vos_service.train.data import DATA_PRESETS, SynthStream, _strided

    cfg = TrainConfig(**{**TINY.to_dict(), "frame_stride": 3, "data": "real"})
    step, batch = next(iter(SynthStream(cfg, 1, 256)))  # step 1: a video step of 3 frames
    plan = plan_step(cfg.seed, 1, 1, cfg.max_objects)[0]
    long = generate_clip(plan.seed, num_frames=9, num_objects=plan.num_objects, options=DATA_PRESETS["real"])
    assert step == 1 and batch.masks.shape[0] == 3
    for t, src in enumerate((0, 3, 6)):
        assert torch.equal(batch.masks[t, 0], torch.from_numpy(long.masks[src] == 1))
    short = _strided(long, 3)  # what the trainer saw, its metadata included: one camera row per kept frame
    assert len(short.meta.camera) == len(short.frames) == 3
    assert np.array_equal(short.meta.camera, long.meta.camera[::3])
    with pytest.raises(ValueError, match="data must be one of"):
        TrainConfig(data="imaginary")
    with pytest.raises(ValueError):
        TrainConfig(frame_stride=0)
