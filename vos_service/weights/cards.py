"""A shipped model's card: the JSON beside its weights, and the README's table of it.

A card records the weights' file, sha256 (checked before loading: weights/shipped.py),
size and parameter count, how they were trained and what they score on the held-out
synthetic test set (written by ``vos-service train ship`` / ``train card``: train/ship.py).
"""

from __future__ import annotations

import json
from pathlib import Path


def read_card(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def write_card(path: Path, card: dict) -> None:
    Path(path).write_text(json.dumps(card, indent=2) + "\n")


def card_markdown(card: dict) -> str:
    """The card's numbers as the README's model-card table."""
    t, e = card["training"], card["eval"]
    cfg, h, b, c, p = t["config"], e["heldout"], e["repeat_first_frame"], e["correction"], e["protocol"]
    runs = t.get("history") or [t]
    first = runs[0]["config"]
    corr = ("no failures to correct" if not c["objects_failed"] else
            f"{c['objects_failed']} objects lost (J < {c['threshold_J']}); mean J after the failure "
            f"{c['J_after_without']:.3f} without, {c['J_after_with']:.3f} with one corrective click "
            f"({c['improved']} of {c['objects_failed']} improved)"
            + (f"; on the clicked frame itself J {c['J_at_click_without']:.3f} -> {c['J_at_click_with']:.3f}"
               if c.get("J_at_click_with") is not None else ""))
    rows = [
        ("architecture", f"SAM 2.1 modules, config `{card['config']}`: {card['params'] / 1e6:.2f} M parameters, "
                         f"256 px input"),
        ("weights", f"`vos_service/weights/{card['file']}`, {card['size_bytes'] / 1e6:.1f} MB fp32, "
                    f"sha256 `{card['sha256'][:16]}...`"),
        ("training data", f"procedural clips (`vos_service.synth`, seeds < 900,000), {cfg['clips_per_step']} "
                          f"clips x {cfg['frames_per_clip']} frames"
                          + (f" (every {cfg['frame_stride']}-th frame of a "
                             f"{cfg['frames_per_clip'] * cfg['frame_stride']}-frame clip)"
                             if cfg.get("frame_stride", 1) > 1 else "")
                          + f" x 1-{cfg['max_objects']} objects per step, options `{cfg.get('data', 'heldout')}`"
                          + (" (objects cut from real frames, real backgrounds, blur)"
                             if cfg.get("data") == "real" else "")),
        ("curriculum", f"steps 0-{first['image_steps']}: image task, {first['image_clips_per_step']} single frames "
                       f"per step; then {first['clips_per_step']} clips x {first['frames_per_clip']} frames with "
                       f"memory" + (f"; then fine-tuned {len(runs) - 1}x (training row)" if len(runs) > 1 else "")),
        ("recipe", f"sam2 `training` package: SAM2Train + MultiStepMultiMasksAndIous (focal {cfg['loss_mask']:g} "
                   f"with alpha {cfg['focal_alpha']:g}, dice {cfg['loss_dice']:g}, IoU {cfg['loss_iou']:g}, "
                   f"occlusion {cfg['loss_class']:g}); "
                   f"clicks p={cfg['prob_point_input']}, boxes p={cfg['prob_box_input']} of those, else masks; "
                   f"{cfg['correction_points']} correction clicks on up to {cfg['frames_to_correct']} frames; AdamW "
                   f"lr {cfg['lr']:g}, cosine, {cfg['warmup_steps']} warm-up steps, grad clip {cfg['grad_clip']}"),
        ("training", _training(t)),
        *([("occlusion threshold", _calibration(card["calibration"]))] if card.get("calibration") else []),
        ("held-out test", f"{p['clips']} clips (seeds from 1,000,000), {p['num_frames']} frames, "
                          f"{p['num_objects']} objects, {p['size'][1]}x{p['size'][0]}, {p['prompt']}"),
        ("J&F (J / F)", f"**{h['J&F']:.3f}** ({h['J']:.3f} / {h['F']:.3f}), J-Recall {h['J-Recall']:.3f}, "
                        f"J-Decay {h['J-Decay']:.3f}" + _interval(h)),
        ("repeat-first-frame baseline", f"J&F {b['J&F']:.3f} ({b['J']:.3f} / {b['F']:.3f})"),
        ("one corrective click", corr),
        ("speed", f"{h['ms_per_frame']:.0f} ms per frame ({p['num_objects']} objects) on the training machine"),
    ]
    if e.get("real_clicks"):
        rows.append(("real clips (one click on frame 0)", "; ".join(
            f"{r['what']} in `{r['video']}`: held on {r['held']} of {r['checks']} checked frames"
            for r in e["real_clicks"])))
    return "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def _calibration(c: dict) -> str:
    tried = ", ".join(f"{k} -> {v:.3f}" for k, v in c["jf_by_shift"].items())
    return (f"the occlusion head's bias lowered by {c['shift']:g} (visible above that logit of the trained head), "
            f"picked on {c['clips']} validation clips (seeds from {c['first_seed']:,}); their J&F per shift: {tried}")


def _training(t: dict) -> str:
    runs = t.get("history") or [t]
    steps, hours = sum(r["steps"] for r in runs), sum(r["train_seconds"] for r in runs) / 3600
    parts = [f"{r['steps']} steps ({r['train_seconds'] / 3600:.2f} h, {r['config']['frames_per_clip']}-frame clips, "
             f"data `{r['config'].get('data', 'heldout')}`, lr {r['config']['lr']:g})" + _average(r['config'])
             for r in runs]
    return f"{steps} steps, {hours:.2f} h of compute on {t['machine']}: " + ", then fine-tuned ".join(parts)


def _average(cfg: dict) -> str:
    a = cfg.get("average")  # train/average.py
    return f" averaged with its initial weights ({a['weight']:g} of its own, {1 - a['weight']:g} of those)" if a else ""


def _interval(h: dict) -> str:
    if "J&F_ci95" not in h:
        return ""
    (a, b), (c, d) = h["J&F_ci95"], h["J-Decay_ci95"]
    return f"; 95 % bootstrap over clips: J&F {a:.3f}-{b:.3f}, J-Decay {c:.3f}-{d:.3f}"
