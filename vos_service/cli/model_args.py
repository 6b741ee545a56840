"""Command-line model selection shared by every command that runs the engine.

At most one source of weights: a registry name or a shipped model (--model), a
checkpoint file (--checkpoint, with --config), or random weights asked for by seed
(--random-weights). With none, the shipped offline model (nano) is used. Random
weights are never chosen silently.
"""

from __future__ import annotations

import argparse

from ..config import ModelSettings
from ..engine.model import LoadedModel, ModelSpec, build_model
from ..weights.selection import DEFAULT_CONFIG, spec_from_settings
from ..weights.shipped import DEFAULT_SHIPPED


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="NAME",
                     help="an official checkpoint name (see `weights list`), downloaded, or a shipped model "
                          f"({DEFAULT_SHIPPED}, the default when no weights are given)")
    src.add_argument("--checkpoint", metavar="PATH", help="a SAM 2 checkpoint file (.pt)")
    src.add_argument("--random-weights", type=int, metavar="SEED",
                     help="RANDOM weights from this seed: for tests and demos only, masks are meaningless")
    g.add_argument("--config", default=None,
                   help=f"sam2 config name or 'nano' (default with --checkpoint/--random-weights: {DEFAULT_CONFIG})")
    g.add_argument("--device", default=None, help="cpu (default) or cuda[:N]")
    g.add_argument("--dtype", default=None, choices=["fp32", "bf16"], help="fp32 (default) or bf16 autocast")
    g.add_argument("--image-size", type=int, default=None, help="model input size (multiple of 16), default: the config's")


def model_spec_from_args(args: argparse.Namespace) -> ModelSpec:
    checkpoint = args.model or (str(args.checkpoint) if args.checkpoint else None)
    return spec_from_settings(ModelSettings(config=args.config, checkpoint=checkpoint,
                                            random_weights=args.random_weights, device=args.device or "cpu",
                                            dtype=args.dtype or "fp32", image_size=args.image_size))


def load_model_from_args(args: argparse.Namespace) -> LoadedModel:
    return build_model(model_spec_from_args(args))
