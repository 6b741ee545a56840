"""Build a SAM 2 model (SAM2Base) from a config shipped in the sam2 package.

Weights come from a checkpoint file, or, only when the caller asks for it by
name (`random_init_seed=`), from a seeded random initialisation. There is no
silent fallback: no checkpoint and no seed is an error.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import torch

from .errors import ModelConfigError

if TYPE_CHECKING:  # sam2 ships no type information: SAM2Base reads as Any, its attributes unchecked
    from sam2.modeling.sam2_base import SAM2Base

log = logging.getLogger(__name__)

# The overrides the official build_sam2_video_predictor applies (sam2 1.1.0),
# minus the predictor-only ones (fill_hole_area): the engine must behave like
# the official video predictor, so it builds the model the same way.
VIDEO_OVERRIDES = (
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

# "nano": a 2.3 M-parameter SAM 2 architecture built on the sam2.1 tiny config,
# small enough to run at tens of ms per frame on a laptop CPU (../shared/REFERENCE.md).
# Same modules, narrower and shallower; the project trains and ships its weights.
NANO_BASE = "configs/sam2.1/sam2.1_hiera_t.yaml"
NANO_OVERRIDES = (
    "++model.image_size=256",
    "++model.image_encoder.trunk.embed_dim=32",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",  # not the first block of a stage
    "++model.image_encoder.neck.d_model=64",
    "++model.image_encoder.neck.backbone_channel_list=[256,128,64,32]",
    "++model.image_encoder.neck.position_encoding.num_pos_feats=64",
    "++model.memory_attention.d_model=64",
    "++model.memory_attention.num_layers=2",
    "++model.memory_attention.layer.d_model=64",
    "++model.memory_attention.layer.dim_feedforward=256",
    "++model.memory_attention.layer.self_attention.embedding_dim=64",
    "++model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.embedding_dim=64",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.kv_in_dim=32",
    "++model.memory_encoder.out_dim=32",
    "++model.memory_encoder.in_dim=64",
    "++model.memory_encoder.position_encoding.num_pos_feats=32",
    "++model.memory_encoder.mask_downsampler.embed_dim=64",
    "++model.memory_encoder.fuser.layer.dim=64",
)
ARCHITECTURES = {"nano": (NANO_BASE, NANO_OVERRIDES)}


@dataclass(frozen=True)
class ModelSpec:
    """What to build. config: a sam2 config name, e.g. 'configs/sam2.1/sam2.1_hiera_t.yaml',
    or a named architecture of this project (ARCHITECTURES, e.g. 'nano')."""

    config: str
    checkpoint: Optional[Path] = None
    random_init_seed: Optional[int] = None  # explicit request for random weights (tests, benchmarks)
    device: str = "cpu"
    dtype: str = "fp32"  # fp32 | bf16 (autocast; weights stay fp32)
    image_size: Optional[int] = None  # override the config's image size (multiple of 16)
    extra_overrides: tuple[str, ...] = field(default_factory=tuple)  # more hydra '++model.x=y'
    # torch.compile (inductor) the image encoder, in place (state_dict keys unchanged). On the
    # 2-core CPU: ~80 s of start-up for a few per cent (benchmarks/engine_vs_official.py --compile).
    compile: bool = False

    def base_config(self) -> str:
        return ARCHITECTURES[self.config][0] if self.config in ARCHITECTURES else self.config

    def hydra_overrides(self) -> list[str]:
        out = list(VIDEO_OVERRIDES)
        if self.config in ARCHITECTURES:
            out.extend(ARCHITECTURES[self.config][1])
        if self.image_size is not None:
            out.append(f"++model.image_size={self.image_size}")
        out.extend(self.extra_overrides)
        return out


@dataclass
class LoadedModel:
    """A SAM2Base in eval mode plus how to run it."""

    sam: SAM2Base
    spec: ModelSpec
    weights: str  # human-readable origin of the weights, shown in outputs

    @property
    def device(self) -> torch.device:
        return torch.device(self.spec.device)

    @property
    def image_size(self) -> int:
        return int(self.sam.image_size)

    def autocast(self):
        """The context every forward pass runs in (bf16 autocast or nothing)."""
        if self.spec.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.spec.dtype])


def compose_sam2_config(config: str, overrides: list[str]):
    """Compose a hydra config from the sam2 package (sam2 registers its config module on import)."""
    import sam2  # noqa: F401  (initialises hydra with the sam2 config module)
    from hydra import compose
    from omegaconf import OmegaConf

    try:
        cfg = compose(config_name=config, overrides=overrides)
    except Exception as e:  # hydra raises several unrelated types
        raise ModelConfigError(f"cannot compose sam2 config {config!r}: {e}") from e
    OmegaConf.resolve(cfg)
    return cfg


def build_model(spec: ModelSpec) -> LoadedModel:
    """Instantiate SAM2Base from `spec`; load its weights; move to device; eval mode."""
    from hydra.utils import instantiate

    if spec.dtype not in DTYPES:
        raise ModelConfigError(f"dtype must be one of {sorted(DTYPES)}, got {spec.dtype!r}")
    if spec.image_size is not None and (spec.image_size <= 0 or spec.image_size % 16):
        raise ModelConfigError(f"image_size must be a positive multiple of 16, got {spec.image_size}")
    if (spec.checkpoint is None) == (spec.random_init_seed is None):
        raise ModelConfigError(
            "give exactly one of a checkpoint file or random_init_seed (random weights are "
            "only used when asked for explicitly)")
    cfg = compose_sam2_config(spec.base_config(), spec.hydra_overrides())
    if spec.random_init_seed is not None:
        torch.manual_seed(spec.random_init_seed)
    sam = instantiate(cfg.model, _recursive_=True)
    if spec.checkpoint is not None:
        load_checkpoint_into(sam, Path(spec.checkpoint))
        weights = f"checkpoint {spec.checkpoint}"
    else:
        weights = f"RANDOM weights (seed {spec.random_init_seed})"
    sam = sam.to(spec.device).eval()
    for p in sam.parameters():
        p.requires_grad_(False)
    if spec.compile:
        sam.image_encoder.compile(dynamic=False)  # compiled lazily, on the first frame of each size
    log.info("built %s at %dpx with %s", spec.config, sam.image_size, weights)
    return LoadedModel(sam=sam, spec=spec, weights=weights)


def load_checkpoint_into(sam: torch.nn.Module, path: Path) -> None:
    """Load an official-format checkpoint ({'model': state_dict}) strictly."""
    if not path.is_file():
        raise ModelConfigError(f"checkpoint file not found: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelConfigError(f"cannot read checkpoint {path}: {e}") from e
    if isinstance(sd, dict) and "model" in sd:
        sd = sd["model"]
    if not isinstance(sd, dict):
        raise ModelConfigError(f"checkpoint {path} holds no state dict")
    missing, unexpected = sam.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ModelConfigError(
            f"checkpoint {path} does not match the config: missing {list(missing)[:5]}, "
            f"unexpected {list(unexpected)[:5]}")
