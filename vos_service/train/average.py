"""Average a fine-tuned run with the weights it started from (WiSE-FT, Wortsman et al. 2022).

Fine-tunes of nano v6 gained held-out J&F and lost the cup in ``02_cups.mp4``; 0.3 of the
fine-tune plus 0.7 of v6 kept most of the gain and held the cup again. The result is an
ordinary run folder (``best.pt`` with the run's step, compute and config, plus its log), so
``train ship OUT --best`` measures and gates it like any candidate and its card keeps the
run's history with the averaging noted in its config.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from vos_service.train.calibrate import BIAS_KEY, trained_shift
from vos_service.train.trainer import BEST, LOG


def average_with_init(run_dir: Path, out_dir: Path, weight: float, checkpoint: str = BEST) -> Path:
    """``weight`` x the run's ``checkpoint`` + (1 - weight) x its ``init_from`` weights (a shipped
    file's calibration undone first) into ``out_dir/best.pt``; returns that path."""
    if not 0.0 < weight < 1.0:
        raise ValueError(f"weight {weight:g}: the run's share must lie strictly between 0 and 1")
    ck = torch.load(Path(run_dir) / checkpoint, map_location="cpu", weights_only=True)
    init = ck["config"].get("init_from")
    if not init:
        raise ValueError(f"{run_dir} was trained from scratch (no init_from): nothing to average it with")
    out = Path(out_dir) / BEST
    if out.exists() or (Path(out_dir) / LOG).exists():
        raise FileExistsError(f"{out_dir} holds a run already")
    base = torch.load(init, map_location="cpu", weights_only=True)["model"]
    if base.keys() != ck["model"].keys():
        raise ValueError(f"{init} and {run_dir} are not the same architecture")
    base = {**base, BIAS_KEY: base[BIAS_KEY] + trained_shift(Path(init))}
    model = {k: (1.0 - weight) * base[k].float() + weight * v.float() for k, v in ck["model"].items()}
    config = {**ck["config"], "average": {"weight": weight, "checkpoint": checkpoint, "with": init}}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**ck, "model": model, "config": config}, out)
    if (Path(run_dir) / LOG).is_file():  # its validation trajectory goes into the card with it
        shutil.copyfile(Path(run_dir) / LOG, Path(out_dir) / LOG)
    return out
