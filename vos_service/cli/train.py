"""`vos-service train {run,ship}`: train a SAM 2 model on synthetic video, then ship it.

    vos-service train run runs/nano --steps 5000     # starts, or resumes runs/nano/last.pt
    vos-service train ship runs/nano --name nano     # weights + card into vos_service/weights/
    vos-service train eval --model nano --clips 30   # any model on the held-out synthetic set
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from vos_service.cli.model_args import add_model_arguments, load_model_from_args
from vos_service.train.config import TrainConfig

_TUNABLE = ("steps", "image_steps", "image_clips_per_step", "clips_per_step", "frames_per_clip", "max_objects",
            "correction_points", "seed", "lr", "warmup_steps", "focal_alpha", "checkpoint_every", "log_every",
            "threads", "val_every", "val_clips")


def add_subparser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train a SAM 2 model on synthetic video, or ship a trained one",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="train_command", required=True, metavar="{run,ship,eval,card}")
    run = actions.add_parser("run", help="start or resume a training run (resumes if RUN_DIR/last.pt exists)")
    run.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    defaults = TrainConfig()
    types = {f.name: f.type for f in fields(TrainConfig)}
    for name in _TUNABLE:
        run.add_argument("--" + name.replace("_", "-"), type=float if types[name] == "float" else int,
                         default=None, help=f"default {getattr(defaults, name)} (a resumed run keeps its own, "
                                            "except --steps, which extends or shortens it)")
    run.add_argument("--arch", default=None, help=f"architecture (default {defaults.arch})")
    run.add_argument("--init-from", default=None, metavar="WEIGHTS",
                     help="fine-tune: a fresh run starts from these weights (e.g. the shipped "
                          "vos_service/weights/nano.pt) instead of a random init")
    run.add_argument("--until", type=int, default=None, help="stop at this step (the schedule still spans --steps)")
    run.add_argument("--workers", type=int, default=1, help="data generation processes (0 = in the trainer)")
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(func=_run)

    sh = actions.add_parser("ship", help="export RUN_DIR's weights into the package and measure them")
    sh.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    sh.add_argument("--name", default="nano")
    sh.add_argument("--out-dir", type=Path, default=None, help="default: the package's weights folder")
    sh.add_argument("--clips", type=int, default=100, help="held-out clips to evaluate on")
    sh.add_argument("--force", action="store_true", help="ship even if it does not beat the current card")
    sh.set_defaults(func=_ship)

    ev = actions.add_parser("eval", help="score any model on the held-out synthetic test set (one click, J&F)")
    add_model_arguments(ev)
    ev.add_argument("--clips", type=int, default=100, help="held-out clips to evaluate on")
    ev.add_argument("--json", type=Path, default=None, help="also write the numbers (and failure cases) here")
    ev.set_defaults(func=_eval)

    cd = actions.add_parser("card", help="re-measure a shipped model's card (same weights, e.g. more clips)")
    cd.add_argument("--name", default="nano")
    cd.add_argument("--clips", type=int, default=100, help="held-out clips to evaluate on")
    cd.set_defaults(func=_card)
    return p


def _card(args: argparse.Namespace) -> int:
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.ship import card_markdown, rescore

    print(card_markdown(rescore(args.name, protocol=HeldOutProtocol(clips=args.clips))))
    return 0


def _run(args: argparse.Namespace) -> int:
    from vos_service.train.trainer import CHECKPOINT, Trainer

    given = {k: getattr(args, k) for k in _TUNABLE + ("arch", "init_from") if getattr(args, k) is not None}
    resuming = (args.run_dir / CHECKPOINT).is_file()
    if resuming and set(given) - {"steps"}:
        raise SystemExit(f"error: {args.run_dir} holds a run; only --steps may change on resume "
                         f"(got {sorted(set(given) - {'steps'})})")
    cfg = TrainConfig(**given) if not resuming else (TrainConfig(steps=given["steps"]) if "steps" in given else None)
    trainer = Trainer(args.run_dir, cfg)
    print(f"{'resuming' if resuming else 'starting'} {args.run_dir} at step {trainer.step} of {trainer.cfg.steps}")
    trainer.run(until_step=args.until, progress=not args.no_progress, workers=args.workers)
    print(f"step {trainer.step}, {trainer.elapsed_s / 60:.1f} min of training; checkpoint {trainer.save()}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.ship import evaluate_model

    model = load_model_from_args(args)
    result = evaluate_model(model, HeldOutProtocol(clips=args.clips))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    h, b, c = result["heldout"], result["repeat_first_frame"], result["correction"]
    print(f"{model.weights}: J&F {h['J&F']:.3f} (J {h['J']:.3f}, F {h['F']:.3f}) on {args.clips} held-out clips, "
          f"{h['objects']} objects; repeat-first-frame baseline J&F {b['J&F']:.3f}")
    if c["objects_failed"]:
        print(f"{c['objects_failed']} objects lost (J < {c['threshold_J']}): J after the failure "
              f"{c['J_after_without']:.3f} -> {c['J_after_with']:.3f} with one corrective click")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from vos_service.weights.shipped import WEIGHTS_DIR
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.ship import card_markdown, ship

    from vos_service.train.ship import ShipRefused

    try:
        card = ship(args.run_dir, args.name, args.out_dir or WEIGHTS_DIR, HeldOutProtocol(clips=args.clips),
                    force=args.force)
    except ShipRefused as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(card["eval"], indent=2))
    print(card_markdown(card))
    return 0
