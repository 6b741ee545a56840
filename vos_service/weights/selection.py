"""Model settings -> what to build: at most one source of weights, never random by accident.

A registry name or a shipped model (``model.checkpoint``), a checkpoint file (with
``model.config``), or random weights asked for by seed (``model.random_weights``). With
none, the shipped offline model (nano). Never downloads: serving must not block on the
network, so fetching is an explicit step (``vos-service weights download``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.errors import ModelConfigError
from .checkpoints import resolve_checkpoint
from .shipped import DEFAULT_SHIPPED, shipped_model, shipped_names

if TYPE_CHECKING:  # engine.model imports torch: only once a spec is made (the CLI reads DEFAULT_CONFIG)
    from ..config import ModelSettings
    from ..engine.model import ModelSpec

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


def spec_from_settings(m: ModelSettings) -> ModelSpec:
    """Model settings -> what to build. checkpoint: a registry name or a file path."""
    from ..engine.model import ModelSpec

    if m.checkpoint and m.checkpoint in shipped_names():
        return _shipped_spec(m.checkpoint, m)
    if m.checkpoint:
        config, path = resolve_checkpoint(m.checkpoint)  # registry name or file; never downloads
        return ModelSpec(m.config or config or DEFAULT_CONFIG, checkpoint=path, device=m.device, dtype=m.dtype,
                         image_size=m.image_size, compile=m.compile)
    if m.random_weights is not None:
        return ModelSpec(m.config or DEFAULT_CONFIG, random_init_seed=m.random_weights, device=m.device,
                         dtype=m.dtype, image_size=m.image_size, compile=m.compile)
    return _shipped_spec(DEFAULT_SHIPPED, m)


def _shipped_spec(name: str, m: ModelSettings) -> ModelSpec:
    from ..engine.model import ModelSpec

    shipped = shipped_model(name)
    if m.config and m.config != shipped.config:
        raise ModelConfigError(
            f"no weights for config {m.config!r}: the shipped model {name!r} is a {shipped.config!r} model. "
            "Pass --model NAME (an official checkpoint, see `vos-service weights list`), --checkpoint PATH, "
            "or --random-weights SEED to run with random weights on purpose")
    return ModelSpec(shipped.config, checkpoint=shipped.weights, device=m.device, dtype=m.dtype,
                     image_size=m.image_size, compile=m.compile)
