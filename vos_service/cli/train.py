"""`vos-service train ...`: train a SAM 2 model on synthetic video, average, calibrate, ship it.

    vos-service train run runs/nano --steps 5000     # starts, or resumes runs/nano/last.pt
    vos-service train ship runs/nano --name nano     # weights + card into vos_service/weights/
    vos-service train calibrate --name nano          # the shipped model's occlusion threshold, if it helps
    vos-service train eval --model nano --clips 30   # any model on the held-out synthetic set
    vos-service train average runs/ft runs/ft-avg --weight 0.3 --best   # WiSE-FT, then ship runs/ft-avg --best
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from ..train.config import TrainConfig
from ..train.data import DATA_PRESETS
from .exit_codes import CliError
from .model_args import add_model_arguments, load_model_from_args
from .options import add_parser

_TUNABLE = ("steps", "image_steps", "image_clips_per_step", "clips_per_step", "frames_per_clip", "max_objects",
            "correction_points", "seed", "lr", "warmup_steps", "focal_alpha", "checkpoint_every", "log_every",
            "threads", "val_every", "val_clips", "frame_stride", "min_lr_ratio", "frames_to_correct", "loss_class")


def _clip_count(text: str) -> int:
    n = int(text)
    if n < 2:  # the card's bootstrap interval over clips needs two
        raise argparse.ArgumentTypeError(f"{n}: at least 2 held-out clips (the bootstrap interval needs 2)")
    return n


def _add_clips(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=_clip_count, default=100,
                   help="held-out clips to evaluate on, at least 2 (default %(default)s)")


def configure(p: argparse.ArgumentParser) -> None:
    p.description, p.formatter_class = __doc__, argparse.RawDescriptionHelpFormatter
    actions = p.add_subparsers(dest="train_command", required=True, metavar="{run,ship,calibrate,average,eval,card}")
    run = add_parser(actions, "run", help="start or resume a training run (resumes if RUN_DIR/last.pt exists)")
    # Said once here rather than after every option's default, where it repeated on each line of --help.
    run.epilog = ("A resumed run keeps its own settings; only --steps (extend or shorten the schedule) and "
                  "--until apply to it.")
    run.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run's folder (checkpoints, log)")
    defaults = TrainConfig()
    types = {f.name: f.type for f in fields(TrainConfig)}
    for name in _TUNABLE:
        run.add_argument("--" + name.replace("_", "-"), type=float if types[name] == "float" else int,
                         default=None, help=f"default {getattr(defaults, name)}")
    run.add_argument("--arch", default=None, help=f"architecture (default {defaults.arch})")
    run.add_argument("--data", default=None, choices=sorted(DATA_PRESETS),
                     help=f"what the synthetic clips contain (default {defaults.data}: the held-out set's own "
                          "options; real: objects cut from real frames, real backgrounds, blur; "
                          "mixed: a little of each)")
    run.add_argument("--init-from", default=None, metavar="WEIGHTS",
                     help="fine-tune: a fresh run starts from these weights (e.g. the shipped "
                          "vos_service/weights/nano.pt) instead of a random init (default: none, random)")
    run.add_argument("--until", type=int, default=None,
                     help="stop at this step (the schedule still spans --steps; default: --steps)")
    run.add_argument("--workers", type=int, default=1,
                     help="data generation processes (0 = in the trainer; default %(default)s)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)

    sh = add_parser(actions, "ship", help="export RUN_DIR's weights into the package and measure them")
    sh.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run to ship")
    sh.add_argument("--name", default="nano", help="the shipped model's name (default %(default)s)")
    sh.add_argument("--out-dir", type=Path, default=None, help="where to write (default: the package's weights folder)")
    _add_clips(sh)
    sh.add_argument("--force", action="store_true", help="ship even if it does not beat the current card")
    sh.add_argument("--best", action="store_true",
                    help="ship the run's best validation step (RUN_DIR/best.pt) instead of its last (last.pt)")
    sh.add_argument("--calibrate", action="store_true",
                    help="first set the occlusion head's threshold on validation clips (a few minutes; "
                         "vos_service/train/calibrate.py)")
    sh.set_defaults(func=_ship)

    cb = add_parser(actions, "calibrate",
                    help="set a shipped model's occlusion threshold on validation clips; it replaces the "
                         "model only if it then beats its card on the held-out set")
    cb.add_argument("--name", default="nano", help="the shipped model (default %(default)s)")
    cb.add_argument("--out-dir", type=Path, default=None, help="its folder (default: the package's weights folder)")
    _add_clips(cb)
    cb.set_defaults(func=_calibrate)

    av = add_parser(actions, "average", help="average a fine-tuned run with the weights it started from "
                                             "(WiSE-FT) into a new run folder to ship")
    av.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the fine-tuned run")
    av.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="the new run folder (ship it with --best)")
    av.add_argument("--weight", type=float, default=0.5,
                    help="the run's share, between 0 and 1; its initial weights get the rest (default %(default)s)")
    av.add_argument("--best", action="store_true", help="average the run's best validation step, not its last")
    av.set_defaults(func=_average)

    ev = add_parser(actions, "eval", help="score any model on the held-out synthetic test set (one click, J&F)")
    add_model_arguments(ev)
    _add_clips(ev)
    ev.add_argument("--json", type=Path, default=None,
                    help="also write the numbers (and failure cases) here (default: none)")
    ev.add_argument("--no-real-clips", action="store_true",
                    help="skip the point checks on the real clips (about a minute)")
    ev.add_argument("--overlays", type=Path, default=None, metavar="DIR",
                    help="write the real-clip checks' frames with mask and points as PNGs here (default: none)")
    ev.set_defaults(func=_eval)

    cd = add_parser(actions, "card", help="re-measure a shipped model's card (same weights, e.g. more clips)")
    cd.add_argument("--name", default="nano", help="the shipped model (default %(default)s)")
    _add_clips(cd)
    cd.set_defaults(func=_card)


def _card(args: argparse.Namespace) -> int:
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.ship import rescore
    from vos_service.weights.cards import card_markdown

    print(card_markdown(rescore(args.name, protocol=HeldOutProtocol(clips=args.clips))))
    return 0


def _run(args: argparse.Namespace) -> int:
    import torch

    from vos_service.train.trainer import CHECKPOINT, Trainer

    given = {k: getattr(args, k) for k in _TUNABLE + ("arch", "init_from", "data") if getattr(args, k) is not None}
    resuming = (args.run_dir / CHECKPOINT).is_file()
    if resuming:  # the command that started a run resumes it; a changed setting (but --steps) is refused
        stored = TrainConfig.from_dict(torch.load(args.run_dir / CHECKPOINT, map_location="cpu",
                                                  weights_only=True)["config"]).to_dict()
        changed = [f"--{k.replace('_', '-')} {v} (the run has {stored[k]})"
                   for k, v in given.items() if k != "steps" and v != stored[k]]
        if changed:
            raise CliError(f"{args.run_dir} holds a run; only --steps may change on resume: {', '.join(changed)}")
    cfg = TrainConfig(**given) if not resuming else (TrainConfig(steps=given["steps"]) if "steps" in given else None)
    trainer = Trainer(args.run_dir, cfg)
    print(f"{'resuming' if resuming else 'starting'} {args.run_dir} at step {trainer.step} of {trainer.cfg.steps}")
    trainer.run(until_step=args.until, progress=not args.no_progress, workers=args.workers)
    print(f"step {trainer.step}, {trainer.elapsed_s / 60:.1f} min of training; checkpoint {trainer.save()}")
    return 0


def _average(args: argparse.Namespace) -> int:
    from vos_service.train.average import average_with_init
    from vos_service.train.trainer import BEST, CHECKPOINT

    try:
        out = average_with_init(args.run_dir, args.out_dir, args.weight, BEST if args.best else CHECKPOINT)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        raise CliError(str(e)) from e
    print(f"{out}: {args.weight:g} x {args.run_dir} + {1 - args.weight:g} x its initial weights; "
          f"ship it with: vos-service train ship {args.out_dir} --best")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.ship import evaluate_model, real_clip_checks

    model = load_model_from_args(args)
    result = evaluate_model(model, HeldOutProtocol(clips=args.clips), real_clips=False)
    if not args.no_real_clips:
        result["real_clicks"] = real_clip_checks(model, overlay_dir=args.overlays)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    h, b, c = result["heldout"], result["repeat_first_frame"], result["correction"]
    print(f"{model.weights}: J&F {h['J&F']:.3f} (J {h['J']:.3f}, F {h['F']:.3f}) on {args.clips} held-out clips, "
          f"{h['objects']} objects; repeat-first-frame baseline J&F {b['J&F']:.3f}")
    if c["objects_failed"]:
        print(f"{c['objects_failed']} objects lost (J < {c['threshold_J']}): J after the failure "
              f"{c['J_after_without']:.3f} -> {c['J_after_with']:.3f} with one corrective click")
    for r in result["real_clicks"] or ():
        print(f"real clip {r['video']}: {r['what']} held on {r['held']} of {r['checks']} checked frames"
              + (f" (lost on frames {r['failed_frames']})" if r["failed_frames"] else ""))
    return 0


def _ship(args: argparse.Namespace) -> int:
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.calibrate import CalibrationPlan
    from vos_service.train.ship import ship
    from vos_service.train.trainer import BEST, CHECKPOINT
    from vos_service.weights.cards import card_markdown
    from vos_service.weights.shipped import WEIGHTS_DIR

    card = ship(args.run_dir, args.name, args.out_dir or WEIGHTS_DIR, HeldOutProtocol(clips=args.clips),
                force=args.force, checkpoint=BEST if args.best else CHECKPOINT,  # ShipRefused: exit code REFUSED
                calibrate=CalibrationPlan() if args.calibrate else None)
    print(json.dumps(card["eval"], indent=2))
    print(card_markdown(card))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from vos_service.eval.tracking import HeldOutProtocol
    from vos_service.train.ship import calibrate_shipped
    from vos_service.weights.cards import card_markdown
    from vos_service.weights.shipped import WEIGHTS_DIR

    card = calibrate_shipped(args.name, args.out_dir or WEIGHTS_DIR, HeldOutProtocol(clips=args.clips))
    print(json.dumps(card["calibration"], indent=2))
    print(card_markdown(card))
    return 0
