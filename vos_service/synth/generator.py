"""``generate_clip``: a seeded synthetic video with per-object ground-truth masks.

A clip is a pure function of (seed, num_frames, size, num_objects, options) and of the
real clips in ``options.videos_dir`` when real material is enabled. Steps: camera
(shake, pan) → background canvas → actors planned (scene.py) → per frame, background
crop, actors back to front (render.py), lighting and noise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vos_service.synth import real_patches
from vos_service.synth.render import draw_actor, light_and_noise
from vos_service.synth.scene import plan_actors
from vos_service.synth.textures import make_texture, random_color
from vos_service.synth.types import ActorMeta, Clip, ClipMeta, SynthOptions, split_of

__all__ = ["generate_clip"]

_BACKGROUND_KINDS = ("noise", "stripes", "checker", "blobs")
_SCENE, _LIGHT, _NOISE, _BLUR = 0, 4, 5, 6  # roles in the per-purpose seeds (scene.py uses 1-3)


def generate_clip(seed: int, *, num_frames: int = 24, size: tuple[int, int] = (256, 256), num_objects: int = 2,
                  options: SynthOptions | None = None) -> Clip:
    """A synthetic clip of ``num_frames`` RGB frames of ``size`` (H, W) with ``num_objects``
    tracked objects (ids 1..num_objects, all visible in frame 0) and their masks.

    Seeds >= ``TEST_SEED_START`` form the held-out test set; see ``types.split_of``.
    """
    opts = options if options is not None else SynthOptions()
    h, w = size
    if num_frames < 1 or h < 16 or w < 16:
        raise ValueError(f"need at least 1 frame of 16x16 pixels, got {num_frames} frames of {size}")
    if not 0 <= num_objects <= 254:
        raise ValueError(f"num_objects must be in [0, 254], got {num_objects}")
    split = split_of(seed)
    rng = np.random.default_rng([seed, _SCENE])
    wants_real = opts.real_patch_prob > 0 or opts.real_background_prob > 0 or opts.cutout_prob > 0
    pool = real_patches.load_pool(opts.videos_dir, split) if wants_real else ()

    # Camera: shake (jitter, bounded to 3 sigma so planned exits stay exits) plus a slow pan.
    shake = np.clip(rng.normal(0, opts.camera_shake, (num_frames, 2)), -3 * opts.camera_shake,
                    3 * opts.camera_shake) if opts.camera_shake > 0 else np.zeros((num_frames, 2))
    pan_dir = rng.uniform(0, 2 * np.pi)
    pan = rng.uniform(0, opts.camera_pan) * np.arange(num_frames)[:, None] * [np.cos(pan_dir), np.sin(pan_dir)]
    margin = int(math.ceil(3 * opts.camera_shake + np.abs(pan).max(initial=0))) + 2
    canvas, background = _background(rng, h + 2 * margin, w + 2 * margin, opts, pool)

    actors = plan_actors(seed, num_objects, opts, num_frames, size, pool, shake_bound=3 * opts.camera_shake)

    light_rng = np.random.default_rng([seed, _LIGHT])
    lighting = (opts.lighting * light_rng.uniform(0.3, 1.0), light_rng.uniform(0.05, 0.4),
                opts.lighting * light_rng.uniform(0.3, 1.5), light_rng.uniform(0.05, 0.3),
                light_rng.uniform(0, 2 * np.pi))
    beta = light_rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx * np.cos(beta) + yy * np.sin(beta)) / np.float32(math.hypot(h, w))
    ramp -= np.float32((ramp.max() + ramp.min()) / 2)
    noise_rng = np.random.default_rng([seed, _NOISE])
    blur = _blur_kernel(np.random.default_rng([seed, _BLUR]), opts, pan_dir)

    frames, masks = [], []
    cam = pan + shake
    for t in range(num_frames):
        x0, y0 = margin + cam[t, 0], margin + cam[t, 1]
        frame = _crop(canvas, x0, y0, h, w)
        labels = np.zeros((h, w), np.uint8)
        for a in actors:
            draw_actor(frame, labels, a, t, shake[t])
        if blur is not None:  # optics and motion blur the scene; the sensor's noise comes after
            frame = cv2.filter2D(frame, -1, blur, borderType=cv2.BORDER_REFLECT)
        frames.append(light_and_noise(frame, t, lighting, ramp, opts.noise_std, noise_rng))
        masks.append(labels)

    meta = ClipMeta(
        seed=seed, split=split, size=(h, w), options=opts, background=background,
        actors=tuple(ActorMeta(label=a.label, shape=a.outline.kind, texture=a.texture_name, color=a.color,
                               z=a.z, lookalike_of=a.lookalike_of, leaves=a.leaves, occludes=a.occludes)
                     for a in actors),
        camera=cam.astype(np.float32),
    )
    return Clip(frames=frames, masks=masks, object_ids=tuple(range(1, num_objects + 1)), meta=meta)


def _blur_kernel(rng: np.random.Generator, opts: SynthOptions, pan_dir: float) -> np.ndarray | None:
    """A clip's blur, or None: defocus (a Gaussian) or motion along the camera's pan (a line)."""
    if opts.blur_prob <= 0 or rng.random() >= opts.blur_prob:
        return None
    sigma = rng.uniform(*opts.blur_sigma)
    if rng.random() < 0.5:
        g = cv2.getGaussianKernel(2 * int(math.ceil(3 * sigma)) + 1, sigma)
        return (g @ g.T).astype(np.float32)
    n = 2 * int(math.ceil(1.5 * sigma)) + 1  # a line of about 3 sigma pixels
    line = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = math.cos(pan_dir) * c, math.sin(pan_dir) * c
    cv2.line(line, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
    return line / line.sum()


def _background(rng: np.random.Generator, h: int, w: int, opts: SynthOptions, pool) -> tuple[np.ndarray, str]:
    """(h, w, 3) float32 canvas the camera looks at, and what it is."""
    if rng.random() < opts.real_background_prob and pool:
        frame = pool[int(rng.integers(len(pool)))]
        return real_patches.crop_background(rng, frame, h, w), frame.name
    kind = _BACKGROUND_KINDS[int(rng.integers(len(_BACKGROUND_KINDS)))]
    base = random_color(rng, saturation=(0.1, 0.7), value=(0.3, 0.9))
    return make_texture(rng, h, w, kind, base, scale=max(h, w) / 96), kind


def _crop(canvas: np.ndarray, x0: float, y0: float, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32 copy of the canvas from (x0, y0), bilinear at sub-pixel offsets."""
    ix, iy = int(math.floor(x0)), int(math.floor(y0))
    fx, fy = np.float32(x0 - ix), np.float32(y0 - iy)
    patch = canvas[iy:iy + h + 1, ix:ix + w + 1]
    top = patch[:-1, :-1] * (1 - fx) + patch[:-1, 1:] * fx
    bottom = patch[1:, :-1] * (1 - fx) + patch[1:, 1:] * fx
    return top * (1 - fy) + bottom * fy
