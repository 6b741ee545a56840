"""`vos-service eval PRED_DIR GT_DIR`: DAVIS J&F of predicted masks against ground truth.

Both folders are DAVIS-layout (``<sequence>/<frame:05d>.png``, indexed PNGs of object
ids); GT_DIR may also be a DAVIS root with ``Annotations/`` inside. Scoring follows the
DAVIS 2017 semi-supervised toolkit: first and last frames are not scored and the
global means are over all objects. A missing or malformed folder is bad input (exit 2).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ..eval.metrics import DEFAULT_BOUND_TH

if TYPE_CHECKING:
    from ..eval import Report

__all__ = ["configure", "format_report", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Score DAVIS-layout predicted masks (PRED_DIR/<seq>/<frame>.png) against ground truth with "
                     "region similarity J and boundary F, as the DAVIS 2017 toolkit does.")
    p.add_argument("pred_dir", metavar="PRED_DIR", type=Path, help="folder of predicted sequence folders")
    p.add_argument("gt_dir", metavar="GT_DIR", type=Path,
                   help="folder of ground-truth sequence folders (or a DAVIS root with Annotations/)")
    p.add_argument("--json", metavar="OUT", type=Path, default=None,
                   help="also write the full report (per object statistics, per frame J and F) as JSON "
                        "(default: none)")
    p.add_argument("--sequences", metavar="NAME", nargs="+", default=None,
                   help="score only these sequences (default: every sequence in GT_DIR)")
    p.add_argument("--bound-th", type=float, default=DEFAULT_BOUND_TH,
                   help="boundary tolerance: fraction of the image diagonal if < 1, else pixels "
                        "(default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..eval import evaluate_dirs

    report = evaluate_dirs(args.pred_dir, args.gt_dir, sequences=args.sequences, bound_th=args.bound_th)
    print(format_report(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=True) + "\n")
    return 0


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
