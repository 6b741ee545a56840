"""The engine's preprocessing against the official sam2 JPEG loader, on real frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sam2.utils.misc import load_video_frames_from_jpg_images

from tests.engine.factories import make_model, make_tracker, real_frames
from vos_service.engine.frames import preprocess, upsample_logits
from vos_service.engine.types import Prompt

S = 256


@pytest.fixture(scope="module")
def jpeg_clip(tmp_path_factory):
    """Real frames written as JPEGs (the official loader's input) and read back (ours)."""
    d = tmp_path_factory.mktemp("jpg")
    rgb = []
    for i, f in enumerate(real_frames("01_dog.mp4", count=12, stride=4)):
        Image.fromarray(f).save(d / f"{i:05d}.jpg", quality=95)
        rgb.append(np.array(Image.open(d / f"{i:05d}.jpg").convert("RGB")))
    official, h, w = load_video_frames_from_jpg_images(str(d), S, offload_video_to_cpu=True)
    return rgb, official, (h, w)


def test_preprocessed_tensors_close_to_official(jpeg_clip):
    rgb, official, (h, w) = jpeg_clip
    ours = torch.cat([preprocess(f, S) for f in rgb])
    assert ours.shape == official.shape and (h, w) == rgb[0].shape[:2]
    diff = (ours - official).abs()
    # torch's antialiased bicubic reproduces PIL's up to uint8 rounding (one grey
    # level = 1/255/0.225 = 0.0174 after normalisation).
    assert diff.mean() < 0.001 and diff.max() < 0.018, (diff.mean(), diff.max())


def test_masks_from_engine_preprocessing_match_official_loader(jpeg_clip):
    rgb, official, (h, w) = jpeg_clip
    model = make_model(S)
    ours_in = torch.cat([preprocess(f, S) for f in rgb])
    masks = {}
    for name, imgs in (("ours", ours_in), ("official", official)):
        tr = make_tracker(model)
        masks[name] = []
        for t in range(imgs.size(0)):
            r = tr.step(tr.encode_images(imgs[t:t + 1])[0], h, w)
            if t == 0:
                r = tr.add_prompt(1, Prompt.from_points([[600, 400]], [1]))[0]
            masks[name].append(r.objects[0].mask)
    for a, b in zip(masks["ours"], masks["official"]):
        union = (a | b).sum()
        iou = (a & b).sum() / union if union else 1.0
        assert iou >= 0.99, iou
    assert np.std([m.mean() for m in masks["official"]]) > 1e-3  # the masks are not trivial


def test_upsample_is_bilinear_like_official():
    low = torch.randn(2, 1, 64, 64)
    out = upsample_logits(low, 720, 1280)
    ref = torch.nn.functional.interpolate(low, size=(720, 1280), mode="bilinear", align_corners=False)
    assert out.shape == (2, 1, 720, 1280) and torch.equal(out, ref)
