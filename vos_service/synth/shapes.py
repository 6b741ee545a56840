"""Object outlines (ellipses, polygons, stars) and their non-rigid wobble.

An outline is a closed polygon in object units: centred on the origin, farthest
vertex at distance 1. The renderer scales, rotates and moves it per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Outline", "Wobble", "make_outline", "make_wobble", "outline_from_vertices", "round_outline"]


@dataclass(frozen=True)
class Outline:
    kind: str
    vertices: np.ndarray  # (V, 2) float32 (x, y), max norm 1
    inner: float          # radius of the largest origin-centred disc inside the outline

    @property
    def angles(self) -> np.ndarray:
        return np.arctan2(self.vertices[:, 1], self.vertices[:, 0])


def outline_from_vertices(kind: str, vertices: np.ndarray) -> Outline:
    """An outline from (V, 2) vertices around the origin, normalised to max norm 1."""
    v = vertices.astype(np.float32)
    v /= float(np.linalg.norm(v, axis=1).max())
    # Distance from the origin to the nearest edge: positive when the origin is inside.
    inner = float(cv2.pointPolygonTest(v.reshape(-1, 1, 2), (0.0, 0.0), True))
    return Outline(kind=kind, vertices=v, inner=max(inner, 0.0))


def _ellipse(aspect: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), aspect * np.sin(t)], axis=1)


def make_outline(rng: np.random.Generator, kind: str) -> Outline:
    """A random outline of ``kind``: ellipse, polygon (3-8 corners, maybe concave) or star."""
    if kind == "ellipse":
        return outline_from_vertices(kind, _ellipse(rng.uniform(0.45, 1.0)))
    if kind == "polygon":
        k = int(rng.integers(3, 9))
        # Corners at sorted angles with radii in [0.55, 1] are star-shaped around the origin:
        # never self-intersecting, origin inside. Slivers (close angles) and gaps of half a
        # turn or more (origin on an edge) fall back to evenly spaced, jittered angles.
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * np.pi]))
        if gaps.min() < 0.35 or gaps.max() > 0.9 * np.pi:
            angles = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(0, 2 * np.pi) \
                + rng.uniform(-0.25, 0.25, k)
        radii = rng.uniform(0.55, 1.0, k)
        return outline_from_vertices(kind, np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1))
    if kind == "star":
        k = int(rng.integers(4, 8))
        inner = rng.uniform(0.38, 0.65)
        t = np.linspace(0, 2 * np.pi, 2 * k, endpoint=False) + rng.uniform(0, np.pi)
        r = np.where(np.arange(2 * k) % 2 == 0, 1.0, inner)
        return outline_from_vertices(kind, np.stack([r * np.cos(t), r * np.sin(t)], axis=1))
    raise ValueError(f"unknown shape kind {kind!r}")


def round_outline(rng: np.random.Generator) -> Outline:
    """A fat ellipse (aspect >= 0.8): an occluder that can hide an object behind it."""
    return outline_from_vertices("ellipse", _ellipse(rng.uniform(0.8, 1.0)))


@dataclass(frozen=True)
class Wobble:
    """Smooth radial deformation: r(θ, t) = r · (1 + Σ_m a_m sin(m θ + ω_m t + φ_m))."""

    harmonics: np.ndarray  # (M,) int
    amps: np.ndarray       # (M,) float, sum <= the deformation amplitude
    freqs: np.ndarray      # (M,) radians per frame
    phases: np.ndarray     # (M,)

    @property
    def max_amp(self) -> float:
        return float(np.sum(self.amps))

    def apply(self, outline: Outline, t: float) -> np.ndarray:
        """(V, 2) float32 deformed vertices at frame ``t`` (same units as the outline)."""
        if self.amps.size == 0 or self.max_amp == 0:
            return outline.vertices
        theta = outline.angles
        d = np.zeros_like(theta)
        for m, a, w, p in zip(self.harmonics, self.amps, self.freqs, self.phases):
            d += a * np.sin(m * theta + w * t + p)
        return (outline.vertices * (1.0 + d)[:, None]).astype(np.float32)


def make_wobble(rng: np.random.Generator, amplitude: float) -> Wobble:
    """Two or three low harmonics sharing ``amplitude``, each drifting at its own speed."""
    m = int(rng.integers(2, 4))
    harmonics = rng.choice(np.arange(2, 6), size=m, replace=False)
    weights = rng.dirichlet(np.ones(m))
    return Wobble(harmonics=harmonics, amps=weights * amplitude,
                  freqs=rng.uniform(0.05, 0.3, m) * rng.choice([-1, 1], m), phases=rng.uniform(0, 2 * np.pi, m))
