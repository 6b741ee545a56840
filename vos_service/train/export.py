"""Training checkpoint -> the weights file the engine loads ({'model': state_dict, 'meta': ...})."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def export_weights(train_checkpoint: Path, out: Path) -> dict:
    """Write only what inference needs; returns the metadata stored beside the weights."""
    ck = torch.load(train_checkpoint, map_location="cpu", weights_only=True)
    meta = {"arch": ck["config"]["arch"], "steps": int(ck["step"]), "train_seconds": float(ck["elapsed_s"]),
            "config": ck["config"]}
    state = {k: v.float().contiguous() for k, v in ck["model"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save({"model": state, "meta": meta}, tmp)
    os.replace(tmp, out)
    return meta
