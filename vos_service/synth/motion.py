"""Object and camera motion: smooth random paths, size / angle / stretch over time,
and the windows in which an object leaves the frame or hides behind another.

Positions are screen pixels (x, y) of the object's centre; a track has one entry per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Pose", "Window", "blend_towards", "make_pose", "plan_window", "random_path", "window_weight"]

KEY_SPACING = 6  # frames between the random keypoints a path passes through


@dataclass(frozen=True)
class Pose:
    """Everything but the position, per frame."""

    radius: np.ndarray   # (T,) float32 pixels: distance from centre to the outline's farthest vertex
    angle: np.ndarray    # (T,) float32 degrees, counter-clockwise on screen
    stretch: np.ndarray  # (T, 2) float32 anisotropic factors (sx, sy) in object axes

    def scaled(self, factor: float) -> Pose:
        return Pose(self.radius * np.float32(factor), self.angle, self.stretch)

    def extent(self, wobble: float) -> np.ndarray:
        """(T,) farthest reach of the deformed outline from the centre, pixels."""
        return self.radius * (1.0 + wobble) * self.stretch.max(axis=1)

    def reach_inside(self, inner: float, wobble: float) -> np.ndarray:
        """(T,) radius of the centred disc the deformed outline surely covers, pixels."""
        return self.radius * inner * (1.0 - wobble) * self.stretch.min(axis=1)


def make_pose(rng: np.random.Generator, num_frames: int, radius: float, *, scale_change: float,
              max_rotation: float, stretch: float) -> Pose:
    """Size oscillating by up to ``scale_change``, steady spin up to ``max_rotation`` °/frame,
    and a breathing anisotropic stretch of up to ``stretch``."""
    t = np.arange(num_frames, dtype=np.float64)
    cycles = rng.uniform(0.25, 1.0)
    amp = scale_change * rng.uniform(0.3, 1.0)
    r = radius * (1.0 + amp * np.sin(2 * np.pi * cycles * t / max(num_frames, 1) + rng.uniform(0, 2 * np.pi)))
    angle = rng.uniform(0, 360) + rng.uniform(-max_rotation, max_rotation) * t
    s_amp = stretch * rng.uniform(0.0, 1.0)
    s = s_amp * np.sin(rng.uniform(0.05, 0.25) * t + rng.uniform(0, 2 * np.pi))
    st = np.stack([1.0 + s, 1.0 - 0.5 * s], axis=1)
    return Pose(r.astype(np.float32), angle.astype(np.float32), st.astype(np.float32))


def _catmull_rom(keys: np.ndarray, times: np.ndarray, num_frames: int) -> np.ndarray:
    """(T, 2) uniform Catmull-Rom spline through ``keys`` (K, 2) placed at frame ``times`` (K,)."""
    if len(keys) == 1:
        return np.repeat(keys, num_frames, axis=0)
    padded = np.concatenate([2 * keys[:1] - keys[1:2], keys, 2 * keys[-1:] - keys[-2:-1]])
    out = np.empty((num_frames, 2))
    for f in range(num_frames):
        i = min(int(np.searchsorted(times, f, side="right")) - 1, len(keys) - 2)
        u = (f - times[i]) / (times[i + 1] - times[i])
        p0, p1, p2, p3 = padded[i], padded[i + 1], padded[i + 2], padded[i + 3]
        m1, m2 = (p2 - p0) / 2, (p3 - p1) / 2
        u2, u3 = u * u, u * u * u
        out[f] = ((2 * u3 - 3 * u2 + 1) * p1 + (u3 - 2 * u2 + u) * m1
                  + (-2 * u3 + 3 * u2) * p2 + (u3 - u2) * m2)
    return out


def random_path(rng: np.random.Generator, num_frames: int, start: np.ndarray, size: tuple[int, int],
                max_speed_px: float, margin: float) -> np.ndarray:
    """(T, 2) float64 smooth wandering path from ``start``: keypoints every few frames, each a
    step of up to ``max_speed_px`` per frame in a slowly turning direction, kept ``margin``
    pixels inside the frame (``start`` itself may lie outside: the object then walks in)."""
    h, w = size
    n_keys = max(2, int(np.ceil((num_frames - 1) / KEY_SPACING)) + 1)
    keys = [np.asarray(start, np.float64)]
    heading = rng.uniform(0, 2 * np.pi)
    lo = np.array([margin, margin])
    hi = np.array([max(w - margin, margin), max(h - margin, margin)])
    for _ in range(n_keys - 1):
        heading += rng.normal(0, 0.9)
        step = rng.uniform(0.2, 1.0) * max_speed_px * KEY_SPACING
        keys.append(np.clip(keys[-1] + step * np.array([np.cos(heading), np.sin(heading)]), lo, hi))
    times = np.arange(n_keys, dtype=np.float64) * KEY_SPACING
    return _catmull_rom(np.stack(keys), times, num_frames)


@dataclass(frozen=True)
class Window:
    """An event's frames: ramps in over [start, full], holds over [full, release], ramps out to end."""

    start: int
    full: int
    release: int
    end: int

    @property
    def held(self) -> tuple[int, int]:
        return (self.full, self.release)


def plan_window(rng: np.random.Generator, num_frames: int) -> Window | None:
    """A random event window inside frames [1, T-2], or None if the clip is too short."""
    ramp = max(3, num_frames // 6)
    hold = max(2, num_frames // 6)
    span = 2 * ramp + hold
    if num_frames < 10 or span > num_frames - 3:
        return None
    a = int(rng.integers(1, num_frames - 2 - span + 1))
    return Window(a, a + ramp, a + ramp + hold, a + span)


def window_weight(num_frames: int, win: Window) -> np.ndarray:
    """(T,) float64: 0 outside the window, smoothstep up to 1, 1 while held, smoothstep down."""
    t = np.arange(num_frames, dtype=np.float64)
    up = np.clip((t - win.start) / max(win.full - win.start, 1), 0, 1)
    down = np.clip((win.end - t) / max(win.end - win.release, 1), 0, 1)
    x = np.minimum(up, down)
    return x * x * (3 - 2 * x)


def blend_towards(path: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(T, 2) path pulled onto ``target`` ((T, 2) or (2,)) by ``weight`` (T,) in [0, 1]."""
    return path * (1 - weight[:, None]) + np.asarray(target, np.float64) * weight[:, None]
