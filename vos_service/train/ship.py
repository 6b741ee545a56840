"""Turn a training run into a shipped model: weights + a JSON card with its measured scores (weights/cards.py).

``ship`` exports the run's weights into vos_service/weights/<name>.pt, evaluates them
on the held-out synthetic test set (one click, DAVIS J&F; the repeat-first-frame
baseline; one corrective click after each failure) and writes <name>.json beside
them. The card's ``test_subset`` entry is what tests/train/test_shipped.py checks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from vos_service.engine.model import LoadedModel, ModelSpec, build_model
from vos_service.eval.bootstrap import bootstrap
from vos_service.eval.real_clicks import REAL_CASES, RealCase, overlay, run_case
from vos_service.eval.scores import summarize
from vos_service.eval.tracking import HeldOutProtocol, correction_gain, repeat_first_frame, score_clips, track_one_click
from vos_service.synth.types import DEFAULT_VIDEOS_DIR
from vos_service.train.calibrate import CalibrationPlan, calibrate_occlusion, shift_weights
from vos_service.train.export import export_weights
from vos_service.train.trainer import CHECKPOINT, LOG
from vos_service.weights.cards import read_card, write_card
from vos_service.weights.shipped import WEIGHTS_DIR

TEST_SUBSET = 4  # the first clips of the held-out set, re-scored by the tests


def evaluate_model(model: LoadedModel, protocol: HeldOutProtocol = HeldOutProtocol(), real_clips: bool = True) -> dict:
    """Every number the card reports, measured now (any model: shipped, official, random);
    ``real_clips``: also the hand-placed point checks on the real clips (about a minute)."""
    clips = protocol.clip_list()
    t0 = time.perf_counter()
    report = score_clips(clips, lambda c: track_one_click(model, c))
    seconds = time.perf_counter() - t0
    subset = summarize(report.sequences[:TEST_SUBSET])  # the clips come first in the report, in order
    baseline = score_clips(clips, repeat_first_frame)
    fixes = correction_gain(model, clips)
    frames = sum(len(c.frames) for c in clips)
    real = real_clip_checks(model) if real_clips else None
    return {
        "protocol": asdict(protocol) | {"prompt": "one center click per object on frame 0",
                                        "scored_frames": "1..T-2 (DAVIS)"},
        "heldout": {"J&F": report.jf_mean, "J": report.j_mean, "F": report.f_mean, "J-Recall": report.j_recall,
                    "J-Decay": report.j_decay, "objects": report.num_objects,
                    # 95 % percentile bootstrap over clips (eval/bootstrap.py): how far the J&F could move
                    "J&F_ci95": bootstrap(report, "J&F").as_list(),
                    "J-Decay_ci95": bootstrap(report, "J-Decay").as_list(),
                    "ms_per_frame": 1000 * seconds / frames},
        "repeat_first_frame": {"J&F": baseline.jf_mean, "J": baseline.j_mean, "F": baseline.f_mean},
        "test_subset": {"clips": TEST_SUBSET, "J&F": subset.jf_mean, "J": subset.j_mean, "F": subset.f_mean},
        "correction": {
            "objects_failed": len(fixes), "threshold_J": 0.5,
            "J_after_without": float(np.mean([f.j_after_without for f in fixes])) if fixes else None,
            "J_after_with": float(np.mean([f.j_after_with for f in fixes])) if fixes else None,
            "improved": sum(f.j_after_with > f.j_after_without for f in fixes),
            "J_at_click_without": float(np.mean([f.j_at_without for f in fixes])) if fixes else None,
            "J_at_click_with": float(np.mean([f.j_at_with for f in fixes])) if fixes else None,
            "cases": [asdict(f) for f in fixes],
        },
        # Hand-placed inside / outside points on the real clips (eval/real_clicks.py); None
        # where the clips are not beside the checkout.
        "real_clicks": real,
    }


def real_clip_checks(model: LoadedModel, videos_dir: Path = DEFAULT_VIDEOS_DIR,
                     overlay_dir: Path | None = None) -> list[dict] | None:
    """The real-clip point checks; ``overlay_dir``: also a PNG per checked frame, to look at."""
    if not all((Path(videos_dir) / case.video).is_file() for case in REAL_CASES):
        return None
    results = []
    for case in REAL_CASES:
        save = functools.partial(_save_overlay, overlay_dir, case) if overlay_dir is not None else None
        results.append(run_case(model, case, videos_dir, on_frame=save).to_dict())
    return results


def _save_overlay(overlay_dir: Path, case: RealCase, index: int, rgb: np.ndarray, mask: np.ndarray) -> None:
    import cv2

    check = next(c for c in case.checks if c.frame == index)
    overlay_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(overlay_dir / f"{Path(case.video).stem}_{index:03d}.png"),
                cv2.cvtColor(overlay(rgb, mask, check), cv2.COLOR_RGB2BGR))


def run_history(run_dir: Path, meta: dict, previous: dict | None) -> list[dict]:
    """The chain of runs behind the weights: the shipped model's own chain when this run was
    fine-tuned from it, then this run with its validation trajectory (from log.jsonl)."""
    chain: list[dict] = []
    if previous is not None and meta["config"].get("init_from"):
        t = previous["training"]
        chain = t.get("history") or [{"steps": t["steps"], "train_seconds": t["train_seconds"],
                                      "config": t["config"], "machine": t["machine"]}]
    log = Path(run_dir) / LOG
    lines = [json.loads(x) for x in log.read_text().splitlines()] if log.is_file() else []
    val = [{k: round(v, 4) if isinstance(v, float) else v for k, v in x.items()} for x in lines if "val_J&F" in x]
    return chain + [{"steps": meta["steps"], "train_seconds": meta["train_seconds"], "config": meta["config"],
                     "machine": _machine(), "validation": val}]


def _machine() -> str:
    return f"{platform.machine()} CPU, torch threads {torch.get_num_threads()}"


class ShipRefused(RuntimeError):
    """The candidate does not beat the model it would replace (or cannot be compared with it)."""


def ship(run_dir: Path, name: str = "nano", out_dir: Path = WEIGHTS_DIR,
         protocol: HeldOutProtocol = HeldOutProtocol(), force: bool = False, real_clips: bool = True,
         checkpoint: str = CHECKPOINT, calibrate: CalibrationPlan | None = None) -> dict:
    """Export ``run_dir/checkpoint`` (``last.pt``, or ``best.pt``: the best validation step),
    measure it, and replace ``name`` only if the candidate's held-out J&F beats its card's
    (measured on the same protocol), unless ``force``. ``calibrate``: first set the occlusion
    head's threshold on validation clips (calibrate.py)."""
    current = _current_card(out_dir, name, protocol, force)
    candidate = out_dir / f".{name}.candidate.pt"
    meta = export_weights(Path(run_dir) / checkpoint, candidate)
    training = {"steps": meta["steps"], "train_seconds": meta["train_seconds"], "config": meta["config"],
                "machine": _machine(), "history": run_history(run_dir, meta, current)}
    return _judge(candidate, meta["arch"], training, name, out_dir, protocol, current, force, real_clips, calibrate)


def calibrate_shipped(name: str = "nano", out_dir: Path = WEIGHTS_DIR, protocol: HeldOutProtocol = HeldOutProtocol(),
                      real_clips: bool = True, plan: CalibrationPlan = CalibrationPlan()) -> dict:
    """Calibrate a shipped model's occlusion threshold (same training) and replace it if that beats its card."""
    current = _current_card(out_dir, name, protocol, force=False)
    if current is None:
        raise ShipRefused(f"no shipped {name} card in {out_dir}")
    if current.get("calibration"):
        raise ShipRefused(f"{name} is calibrated already (shift {current['calibration']['shift']:g})")
    candidate = out_dir / f".{name}.candidate.pt"
    shutil.copyfile(out_dir / current["file"], candidate)
    return _judge(candidate, current["config"], current["training"], name, out_dir, protocol, current,
                  force=False, real_clips=real_clips, calibrate=plan)


def _current_card(out_dir: Path, name: str, protocol: HeldOutProtocol, force: bool) -> dict | None:
    card_path = out_dir / f"{name}.json"
    current = read_card(card_path) if card_path.is_file() else None
    if current is not None and not force and current["eval"]["protocol"]["clips"] != protocol.clips:
        raise ShipRefused(f"the current {name} card was scored on {current['eval']['protocol']['clips']} clips, "
                          f"not {protocol.clips}: re-score it first (vos-service train card --clips {protocol.clips})")
    return current


def gate(candidate: dict, shipped: dict) -> str | None:
    """Why ``candidate`` (an evaluate_model result) may not replace the model ``shipped`` was
    measured as, or None: it must beat the held-out J&F and hold the real clips' objects on
    no fewer checked frames (a synthetic gain that loses a real cup is no better model)."""
    new, old = candidate["heldout"]["J&F"], shipped["heldout"]["J&F"]
    if new <= old:
        return f"candidate J&F {new:.3f} does not beat the shipped {old:.3f}"
    ours, theirs = ({r["video"]: r for r in e.get("real_clicks") or ()} for e in (candidate, shipped))
    both = sorted(ours.keys() & theirs.keys())  # both measured (the clips were beside the checkout)
    held_new, held_old = (sum(runs[v]["held"] for v in both) for runs in (ours, theirs))
    if held_new < held_old:
        lost = ", ".join(f"{ours[v]['what']} {ours[v]['held']} of {ours[v]['checks']} (shipped {theirs[v]['held']})"
                         for v in both if ours[v]["held"] < theirs[v]["held"])
        return (f"candidate J&F {new:.3f} beats the shipped {old:.3f} but holds the real clips' objects on "
                f"{held_new} checked frames, not {held_old} ({lost})")
    return None


def _judge(candidate: Path, arch: str, training: dict, name: str, out_dir: Path, protocol: HeldOutProtocol,
           current: dict | None, force: bool, real_clips: bool, calibrate: CalibrationPlan | None) -> dict:
    """Measure ``candidate`` (calibrated first if asked) and make it ``name`` if it beats ``current``."""
    calibration = None
    if calibrate is not None:
        calibration = calibrate_occlusion(build_model(ModelSpec(arch, checkpoint=candidate)), calibrate)
        shift_weights(candidate, calibration)
    params = sum(v.numel() for v in torch.load(candidate, weights_only=True)["model"].values())
    evaluation = evaluate_model(build_model(ModelSpec(arch, checkpoint=candidate)), protocol, real_clips)
    refusal = None if current is None or force else gate(evaluation, current["eval"])
    if refusal is not None:
        candidate.unlink()
        raise ShipRefused(f"{refusal} ({protocol.clips} held-out clips"
                          + (f", calibrated: shift {calibration.shift:g}" if calibration else "") + "): not shipped")
    weights = out_dir / f"{name}.pt"
    candidate.replace(weights)
    card = {
        "name": name, "config": arch, "file": weights.name,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "size_bytes": weights.stat().st_size,
        "params": params, "training": training,
        **({"calibration": calibration.to_dict()} if calibration else {}),
        "eval": evaluation,
    }
    write_card(out_dir / f"{name}.json", card)
    return card


def rescore(name: str = "nano", out_dir: Path = WEIGHTS_DIR, protocol: HeldOutProtocol = HeldOutProtocol(),
            real_clips: bool = True) -> dict:
    """Re-measure a shipped model's card (same weights, e.g. on more held-out clips)."""
    path = out_dir / f"{name}.json"
    card = read_card(path)
    weights = out_dir / card["file"]
    card["eval"] = evaluate_model(build_model(ModelSpec(card["config"], checkpoint=weights)), protocol, real_clips)
    write_card(path, card)
    return card
