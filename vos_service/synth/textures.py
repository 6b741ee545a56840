"""Procedural RGB textures for backgrounds and objects, and random colours.

Everything is drawn from the ``np.random.Generator`` passed in, so a texture is a pure
function of the generator's state. Textures are built from low-resolution noise
upsampled with OpenCV, which keeps a 512x512 texture to about a millisecond.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

__all__ = ["TEXTURE_KINDS", "make_texture", "random_color", "shift_color"]

TEXTURE_KINDS = ("noise", "stripes", "checker", "blobs", "flat")


def random_color(rng: np.random.Generator, *, saturation: tuple[float, float] = (0.4, 1.0),
                 value: tuple[float, float] = (0.35, 1.0)) -> np.ndarray:
    """(3,) float32 RGB in [0, 255] with a uniform hue."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return np.array([r, g, b], np.float32) * 255.0


def shift_color(rng: np.random.Generator, rgb: np.ndarray, amount: float) -> np.ndarray:
    """A nearby colour: hue, saturation and value nudged by up to ``amount`` (look-alikes)."""
    h, s, v = colorsys.rgb_to_hsv(*(np.asarray(rgb, np.float64) / 255.0))
    h = (h + rng.uniform(-amount, amount) * 0.25) % 1.0
    s = float(np.clip(s + rng.uniform(-amount, amount), 0, 1))
    v = float(np.clip(v + rng.uniform(-amount, amount), 0.1, 1))
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32) * 255.0


def _noise(rng: np.random.Generator, h: int, w: int, cells: int, octaves: int = 3) -> np.ndarray:
    """HxW float32 fractal value noise in [0, 1]: ``cells`` across at the coarsest octave."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = max(2, cells * 2 ** o)
        grid = rng.random((n, n), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _blend(t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """HxWx3: per-pixel mix of two colours by t (HxW in [0, 1])."""
    return c0[None, None, :] + t[..., None] * (c1 - c0)[None, None, :]


def make_texture(rng: np.random.Generator, h: int, w: int, kind: str, base: np.ndarray,
                 *, scale: float = 1.0) -> np.ndarray:
    """HxWx3 float32 RGB texture of ``kind`` around the colour ``base``.

    ``scale`` sets the size of periodic features (stripes, checks; 1.0 = 6-18 pixels) and
    the coarseness of noise; blobs are sized relative to the texture. A second colour is
    drawn from ``rng``; ``base`` dominates, so fading towards flat ``base`` keeps the look.
    """
    other = random_color(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "noise":
        t = _noise(rng, h, w, cells=max(2, int(4 / scale)))
        tex = _blend(t, base * 0.6, np.clip(base * 0.4 + other * 0.6, 0, 255))
    elif kind == "stripes":
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(6, 18) * scale
        warp = _noise(rng, h, w, cells=3, octaves=1) * period
        phase = (xx * np.cos(theta) + yy * np.sin(theta) + warp) * (2 * np.pi / period)
        t = 0.5 + 0.5 * np.sin(phase)
        tex = _blend(t, base, np.clip(0.5 * base + 0.5 * other, 0, 255))
    elif kind == "checker":
        theta = rng.uniform(0, np.pi / 2)
        size = rng.uniform(6, 16) * scale
        u = xx * np.cos(theta) + yy * np.sin(theta)
        v = -xx * np.sin(theta) + yy * np.cos(theta)
        t = ((np.floor(u / size) + np.floor(v / size)) % 2).astype(np.float32)
        t = cv2.GaussianBlur(t, (3, 3), 0.7)
        tex = _blend(t, base, np.clip(0.4 * base + 0.6 * other, 0, 255))
    elif kind == "blobs":
        tex = _blend(_noise(rng, h, w, cells=3, octaves=2), base * 0.8, np.minimum(base * 1.2, 255))
        for _ in range(int(rng.integers(4, 12))):
            c = random_color(rng)
            center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.uniform(0.04, 0.18) * w) + 1, int(rng.uniform(0.04, 0.18) * h) + 1)
            cv2.ellipse(tex, center, axes, float(rng.uniform(0, 180)), 0, 360, c.tolist(), -1, cv2.LINE_AA)
    elif kind == "flat":
        t = _noise(rng, h, w, cells=2, octaves=2)
        tex = _blend(t, base * 0.9, np.minimum(base * 1.1, 255))
    else:
        raise ValueError(f"unknown texture kind {kind!r}; known: {TEXTURE_KINDS}")
    return np.ascontiguousarray(tex, dtype=np.float32)
