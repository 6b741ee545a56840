"""Command-line model selection shared by every command that runs the engine (serve, track, train eval).

At most one source of weights: a registry name or a shipped model (--model), a
checkpoint file (--checkpoint, with --config), or random weights asked for by seed
(--random-weights). With none, the shipped offline model (nano) is used. Random
weights are never chosen silently. What each choice builds: weights/selection.py.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..weights.selection import DEFAULT_CONFIG
from ..weights.shipped import DEFAULT_SHIPPED
from .options import add_setting_flag

if TYPE_CHECKING:  # torch: only once a model is built
    from ..engine.model import LoadedModel, ModelSpec


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="NAME",
                     help="an official checkpoint name (see `weights list`), downloaded, or a shipped model "
                          f"({DEFAULT_SHIPPED}, the default when no weights are given; setting model.checkpoint)")
    src.add_argument("--checkpoint", metavar="PATH",
                     help="a SAM 2 checkpoint file (.pt; setting model.checkpoint; default none)")
    add_setting_flag(src, "--random-weights", "model.random_weights", type=int, metavar="SEED",
                     help="RANDOM weights from this seed: for tests and demos only, masks are meaningless")
    add_setting_flag(g, "--config", "model.config",
                     help=f"sam2 config name or 'nano' (with --checkpoint/--random-weights: {DEFAULT_CONFIG}; "
                          "else the weights')")
    add_setting_flag(g, "--device", "model.device")
    add_setting_flag(g, "--dtype", "model.dtype", choices=["fp32", "bf16"])
    add_setting_flag(g, "--image-size", "model.image_size", type=int, help="model input size (multiple of 16), "
                                                                           "none: the config's")


def model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The model flags as setting overrides (None: not given)."""
    return {"model.config": args.config, "model.checkpoint": args.model or args.checkpoint,
            "model.random_weights": args.random_weights, "model.device": args.device, "model.dtype": args.dtype,
            "model.image_size": args.image_size}


def model_spec_from_args(args: argparse.Namespace) -> ModelSpec:
    from ..config import ModelSettings
    from ..weights.selection import spec_from_settings

    given = {k.partition(".")[2]: v for k, v in model_overrides(args).items() if v is not None}
    return spec_from_settings(ModelSettings(**given))


def load_model_from_args(args: argparse.Namespace) -> LoadedModel:
    from ..engine.model import build_model

    return build_model(model_spec_from_args(args))
