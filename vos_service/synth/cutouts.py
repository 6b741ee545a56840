"""Objects cut from real frames: a colour-coherent region of a pool frame becomes an
actor's outline, and the pixels around it its texture.

Rectangles and ellipses with a real texture pasted in teach a model that objects are
simple shapes; a region of a real frame has a real object's ragged outline and its
shading runs up to the edge. Regions come from colour quantisation (k-means in Lab on a
smoothed frame) and connected components, cleaned by a morphological open/close, and are
computed once per pool frame per process.
"""

from __future__ import annotations

import cv2
import numpy as np

from vos_service.synth.real_patches import PoolFrame
from vos_service.synth.render import TEX_SPAN
from vos_service.synth.shapes import Outline, outline_from_vertices

__all__ = ["CUTOUT_KIND", "Region", "cut_object", "regions_of"]

CUTOUT_KIND = "cutout"
_CLUSTERS = 8
_MIN_AREA, _MAX_AREA = 0.004, 0.2   # region area, fraction of the frame
_MIN_SOLIDITY = 0.45                # area / convex-hull area: no thin webs of pixels
_MIN_INNER = 6.0                    # pixels: the region holds a disc at least this wide
_MIN_ROUNDNESS = 0.3                # that disc's radius / the farthest contour point's distance
_OPEN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


class Region:
    """One coherent region of a pool frame: its contour around an inside origin."""

    def __init__(self, contour: np.ndarray, origin: tuple[float, float]):
        self.contour = contour  # (V, 2) float32 frame pixels
        self.origin = np.array(origin, np.float32)
        self.reach = float(np.linalg.norm(contour - self.origin, axis=1).max())


# Per process, per pool frame; the pool is a few dozen frames, so this stays small.
_REGIONS: dict[tuple[str, int], tuple[Region, ...]] = {}


def regions_of(frame: PoolFrame) -> tuple[Region, ...]:
    """The usable regions of ``frame`` (computed once per process)."""
    key = (frame.video, frame.index)
    if key not in _REGIONS:
        _REGIONS[key] = _find_regions(frame.image)
    return _REGIONS[key]


def _find_regions(image: np.ndarray) -> tuple[Region, ...]:
    h, w = image.shape[:2]
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (5, 5), 0), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    cv2.setRNGSeed(0)  # k-means' initial centres: the same regions in every process
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, labels, _ = cv2.kmeans(lab, _CLUSTERS, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    labels = labels.reshape(h, w)
    regions = []
    for k in range(_CLUSTERS):
        layer = cv2.morphologyEx((labels == k).astype(np.uint8), cv2.MORPH_OPEN, _OPEN)
        layer = cv2.morphologyEx(layer, cv2.MORPH_CLOSE, _OPEN)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(layer, connectivity=8)
        for c in range(1, n):
            area = stats[c, cv2.CC_STAT_AREA]
            if not _MIN_AREA * h * w <= area <= _MAX_AREA * h * w:
                continue
            x, y, bw, bh = stats[c, :4]
            if x == 0 or y == 0 or x + bw == w or y + bh == h:
                continue  # cut by the frame edge: its outline there is not the object's
            region = _region(comp[y:y + bh, x:x + bw] == c, (x, y), area)
            if region is not None:
                regions.append(region)
    return tuple(regions)


def _region(mask: np.ndarray, offset: tuple[int, int], area: int) -> Region | None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    if area < _MIN_SOLIDITY * cv2.contourArea(cv2.convexHull(contour)):
        return None
    # Origin: the inside point farthest from the edge, so the outline is centred on the object.
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    if dist.max() < _MIN_INNER:
        return None
    oy, ox = np.unravel_index(int(np.argmax(dist)), dist.shape)
    poly = cv2.approxPolyDP(contour, 1.0, True).reshape(-1, 2).astype(np.float32)
    if len(poly) < 6:
        return None
    region = Region(poly + np.asarray(offset, np.float32), (ox + offset[0] + 0.5, oy + offset[1] + 0.5))
    # Slivers and branches (a leash, a table edge) scaled to an object's size vanish: keep
    # regions whose inside disc is a fair part of their reach.
    return region if dist.max() >= _MIN_ROUNDNESS * region.reach else None


def cut_object(rng: np.random.Generator, frame: PoolFrame, tex_size: int) -> tuple[Outline, np.ndarray] | None:
    """An outline and a (tex_size, tex_size, 3) float32 texture cut from a random region of
    ``frame``; None if the frame has no usable region."""
    regions = regions_of(frame)
    if not regions:
        return None
    region = regions[int(rng.integers(len(regions)))]
    outline = outline_from_vertices(CUTOUT_KIND, region.contour - region.origin)
    # The texture spans [-TEX_SPAN, TEX_SPAN] object units and the outline's farthest vertex
    # is 1 unit out: so TEX_SPAN * reach frame pixels either side of the origin.
    half = TEX_SPAN * region.reach
    scale = tex_size / (2 * half)
    ox, oy = region.origin
    warp = np.array([[scale, 0, tex_size / 2 - scale * ox], [0, scale, tex_size / 2 - scale * oy]])
    tex = cv2.warpAffine(frame.image, warp, (tex_size, tex_size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    return outline, tex.astype(np.float32)
