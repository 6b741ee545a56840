"""Draw planned actors onto frames and ground-truth id maps, back to front.

An actor's texture is a square image in object units spanning [-TEX_SPAN, TEX_SPAN];
per frame it is warped by the actor's affine pose and cut out by its (wobbling)
outline. Masks take the label of the front-most actor whose anti-aliased coverage
is at least half a pixel, so occluders (labelled or not) overwrite what they hide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vos_service.synth.motion import Pose
from vos_service.synth.shapes import Outline, Wobble

__all__ = ["TEX_SPAN", "Actor", "draw_actor", "light_and_noise"]

TEX_SPAN = 1.6   # texture half-width in object units: covers the outline at full wobble and stretch
_SUBPIXEL_BITS = 4  # fillPoly fixed-point precision: 1/16 pixel


@dataclass(eq=False)  # identity matters: planning asks "is this the occluder?"
class Actor:
    """A planned object: geometry, look and motion. Filled in by scene planning."""

    label: int                 # mask id, 0 for an untracked distractor
    outline: Outline
    wobble: Wobble
    pose: Pose
    # Filled in by planning (every drawn actor has both); empty until then, never None.
    texture: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.float32))  # (S, S, 3) float32 RGB
    texture_name: str = ""
    color: tuple[int, int, int] = (0, 0, 0)
    path: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (T, 2) float64 screen centre per frame
    z: int = 0
    lookalike_of: int | None = None
    leaves: tuple[int, int] | None = None
    occludes: tuple[int, int, int] | None = None


def _affine(actor: Actor, t: int) -> np.ndarray:
    """(2, 2) linear part mapping object units to screen pixels at frame t (y points down)."""
    theta = np.deg2rad(float(actor.pose.angle[t]))
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array([[c, s], [-s, c]])  # counter-clockwise as seen on screen
    sx, sy = actor.pose.stretch[t]
    return rot @ np.diag([sx, sy]) * float(actor.pose.radius[t])


def draw_actor(frame: np.ndarray, labels: np.ndarray, actor: Actor, t: int, offset: np.ndarray) -> None:
    """Composite ``actor`` at frame ``t`` into ``frame`` (HxWx3 float32) and ``labels`` (HxW uint8).

    ``offset`` (2,) is the camera shake, subtracted from the actor's position.
    """
    h, w = labels.shape
    center = actor.path[t] - offset
    lin = _affine(actor, t)
    verts = actor.wobble.apply(actor.outline, t) @ lin.T + center  # (V, 2) screen pixels
    x0, y0 = np.floor(verts.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(verts.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x0 >= x1 or y0 >= y1:
        return  # entirely outside the frame
    rw, rh = x1 - x0, y1 - y0

    alpha = np.zeros((rh, rw), np.uint8)
    pts = np.round((verts - (x0, y0)) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(alpha, [pts.reshape(-1, 1, 2)], 255, cv2.LINE_AA, shift=_SUBPIXEL_BITS)
    if not alpha.any():
        return

    size = actor.texture.shape[0]
    px_per_unit = size / (2 * TEX_SPAN)
    a = lin / px_per_unit                       # texture pixels -> ROI pixels
    b = center - (x0, y0) - a @ np.array([size / 2, size / 2])
    warp = np.hstack([a, b[:, None]]).astype(np.float64)
    tex = cv2.warpAffine(actor.texture, warp, (rw, rh), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)

    roi = frame[y0:y1, x0:x1]
    cover = alpha.astype(np.float32)[..., None] * np.float32(1 / 255)
    roi += (tex - roi) * cover
    labels[y0:y1, x0:x1][alpha >= 128] = actor.label


def light_and_noise(frame: np.ndarray, t: int, lighting: tuple[float, float, float, float, float],
                    ramp: np.ndarray, noise_std: float, rng: np.random.Generator) -> np.ndarray:
    """HxWx3 uint8 RGB: ``frame`` (float32) under a flickering gain and a moving brightness
    gradient, plus Gaussian sensor noise.

    ``lighting`` = (global amplitude, global speed, gradient amplitude, gradient speed, phase);
    ``ramp`` is HxW float32 in [-0.5, 0.5] along the gradient's direction.
    """
    g_amp, g_speed, r_amp, r_speed, phase = lighting
    if g_amp or r_amp:
        gain = 1.0 + g_amp * np.sin(g_speed * t + phase)
        grad = r_amp * np.sin(r_speed * t + 2 * phase)
        frame = frame * (np.float32(gain) + np.float32(grad) * ramp)[..., None]
    if noise_std > 0:
        frame = frame + rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(noise_std)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)
