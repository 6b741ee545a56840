"""Model loading: every shipped config, checkpoints, dtypes, and no silent random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.engine.factories import make_tracker, real_frames
from vos_service.engine.errors import ModelConfigError
from vos_service.engine.model import ModelSpec, build_model
from vos_service.engine.types import Prompt
from vos_service.weights.checkpoints import list_checkpoints

CONFIGS = sorted({c.config for c in list_checkpoints()})


@pytest.mark.parametrize("config", CONFIGS)
def test_every_shipped_config_builds_and_tracks(config):
    model = build_model(ModelSpec(config, random_init_seed=0, image_size=128))
    assert model.image_size == 128 and "RANDOM" in model.weights
    tr = make_tracker(model)
    frame = real_frames(count=1)[0]
    tr.track(frame)
    r = tr.add_prompt(1, Prompt.from_points([[640, 360]], [1]))[0]
    r2 = tr.track(frame)
    assert r.objects[0].mask.shape == (720, 1280) and r2.objects[0].obj_id == 1


def test_checkpoint_round_trip_and_strict_loading(tmp_path: Path):
    cfg = "configs/sam2.1/sam2.1_hiera_t.yaml"
    a = build_model(ModelSpec(cfg, random_init_seed=3, image_size=128))
    path = tmp_path / "ckpt.pt"
    torch.save({"model": a.sam.state_dict()}, path)
    b = build_model(ModelSpec(cfg, checkpoint=path, image_size=128))
    for (n, p), (_, q) in zip(a.sam.state_dict().items(), b.sam.state_dict().items()):
        assert torch.equal(p, q), n
    bad = tmp_path / "bad.pt"
    torch.save({"model": {"nope": torch.zeros(1)}}, bad)
    with pytest.raises(ModelConfigError, match="does not match"):
        build_model(ModelSpec(cfg, checkpoint=bad))
    with pytest.raises(ModelConfigError, match="not found"):
        build_model(ModelSpec(cfg, checkpoint=tmp_path / "missing.pt"))


def test_random_weights_only_on_request():
    with pytest.raises(ModelConfigError, match="exactly one"):
        build_model(ModelSpec("configs/sam2.1/sam2.1_hiera_t.yaml"))
    with pytest.raises(ModelConfigError):
        build_model(ModelSpec("configs/sam2.1/nope.yaml", random_init_seed=0))
    with pytest.raises(ModelConfigError):
        build_model(ModelSpec("configs/sam2.1/sam2.1_hiera_t.yaml", random_init_seed=0, image_size=100))


def test_bf16_autocast_tracks_close_to_fp32():
    frames = real_frames(count=6)
    masks = {}
    for dtype in ("fp32", "bf16"):
        tr = make_tracker(build_model(ModelSpec("configs/sam2.1/sam2.1_hiera_t.yaml", random_init_seed=0,
                                                image_size=256, dtype=dtype)))
        masks[dtype] = []
        for t, f in enumerate(frames):
            r = tr.track(f)
            if t == 0:
                r = tr.add_prompt(1, Prompt(box=(100, 380, 420, 700)))[0]
            masks[dtype].append(r.objects[0].mask)
    ious = [(a & b).sum() / max((a | b).sum(), 1) for a, b in zip(masks["fp32"], masks["bf16"])]
    assert np.mean(ious) > 0.9, ious
