"""Command-line model selection shared by every command that runs the engine.

Exactly one source of weights: a registry name (--model), a checkpoint file
(--checkpoint, with --config), or random weights asked for by seed
(--random-weights). Random weights are never chosen silently.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .engine.checkpoints import resolve_checkpoint
from .engine.errors import ModelConfigError
from .engine.model import LoadedModel, ModelSpec, build_model

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="NAME", help="an official checkpoint name (see `weights list`), downloaded")
    src.add_argument("--checkpoint", type=Path, metavar="PATH", help="a SAM 2 checkpoint file (.pt)")
    src.add_argument("--random-weights", type=int, metavar="SEED",
                     help="RANDOM weights from this seed: for tests and demos only, masks are meaningless")
    g.add_argument("--config", default=None,
                   help=f"sam2 config name or 'nano' (default with --checkpoint/--random-weights: {DEFAULT_CONFIG})")
    g.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    g.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16 = autocast")
    g.add_argument("--image-size", type=int, default=None, help="model input size (multiple of 16), default: the config's")


def model_spec_from_args(args: argparse.Namespace) -> ModelSpec:
    common = dict(device=args.device, dtype=args.dtype, image_size=args.image_size)
    if args.model:
        config, path = resolve_checkpoint(args.model)
        return ModelSpec(args.config or config, checkpoint=path, **common)
    if args.checkpoint:
        return ModelSpec(args.config or DEFAULT_CONFIG, checkpoint=args.checkpoint, **common)
    if args.random_weights is not None:
        return ModelSpec(args.config or DEFAULT_CONFIG, random_init_seed=args.random_weights, **common)
    raise ModelConfigError(
        "no model given: pass --model NAME (an official checkpoint, see `vos-service weights list`), "
        "--checkpoint PATH, or --random-weights SEED to run with random weights on purpose")


def load_model_from_args(args: argparse.Namespace) -> LoadedModel:
    return build_model(model_spec_from_args(args))
