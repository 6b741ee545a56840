"""`vos-service eval PRED_DIR GT_DIR`: DAVIS J&F of predicted masks against ground truth.

Both folders are DAVIS-layout (``<sequence>/<frame:05d>.png``, indexed PNGs of object
ids); GT_DIR may also be a DAVIS root with ``Annotations/`` inside. Scoring follows the
DAVIS 2017 semi-supervised toolkit: first and last frames are not scored and the
global means are over all objects. Wiring, in cli.py::

    eval_cli.add_subparser(sub)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from vos_service.eval import DEFAULT_BOUND_TH, EvalError, Report, evaluate_dirs

__all__ = ["add_subparser", "format_report", "run"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # as argparse's usage errors: something the operator fixes


def add_subparser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help="DAVIS J&F of predicted masks against ground truth",
        description="Score DAVIS-layout predicted masks (PRED_DIR/<seq>/<frame>.png) against ground "
                    "truth with region similarity J and boundary F, as the DAVIS 2017 toolkit does.",
    )
    p.add_argument("pred_dir", metavar="PRED_DIR", type=Path, help="folder of predicted sequence folders")
    p.add_argument("gt_dir", metavar="GT_DIR", type=Path,
                   help="folder of ground-truth sequence folders (or a DAVIS root with Annotations/)")
    p.add_argument("--json", metavar="OUT", type=Path, default=None,
                   help="also write the full report (per object statistics, per frame J and F) as JSON")
    p.add_argument("--sequences", metavar="NAME", nargs="+", default=None,
                   help="score only these sequences (default: every sequence in GT_DIR)")
    p.add_argument("--bound-th", type=float, default=DEFAULT_BOUND_TH,
                   help="boundary tolerance: fraction of the image diagonal if < 1, else pixels")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        report = evaluate_dirs(args.pred_dir, args.gt_dir, sequences=args.sequences, bound_th=args.bound_th)
    except EvalError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_report(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=True) + "\n")
    return EXIT_OK


def format_report(report: Report) -> str:
    """Per-sequence table (one row per object, then the sequence mean) and the global line."""
    width = max([len("SEQUENCE")] + [len(s.name) for s in report.sequences])
    lines = [f"{'SEQUENCE':<{width}}  {'OBJ':>4}  {'J-Mean':>7}  {'F-Mean':>7}  {'J&F':>7}"]
    for s in report.sequences:
        for o in s.objects:
            lines.append(f"{s.name:<{width}}  {o.object_id:>4}  {_f(o.j_mean)}  {_f(o.f_mean)}  {_f(o.jf_mean)}")
        if len(s.objects) > 1:
            lines.append(f"{s.name:<{width}}  {'all':>4}  {_f(s.j_mean)}  {_f(s.f_mean)}  {_f(s.jf_mean)}")
    lines.append("")
    lines.append(f"{report.num_objects} objects in {len(report.sequences)} sequences")
    lines.append(f"J&F-Mean {_f(report.jf_mean)}   J-Mean {_f(report.j_mean)}  J-Recall {_f(report.j_recall)}"
                 f"  J-Decay {_f(report.j_decay)}   F-Mean {_f(report.f_mean)}  F-Recall {_f(report.f_recall)}"
                 f"  F-Decay {_f(report.f_decay)}")
    return "\n".join(lines)


def _f(x: float) -> str:
    return f"{'nan':>7}" if math.isnan(x) else f"{x:7.3f}"
