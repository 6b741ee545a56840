"""Frame pre- and post-processing, as the official predictor does it.

Preprocess: resize the uint8 RGB frame to image_size x image_size, scale to
[0, 1], ImageNet-normalise. The official loader resizes with PIL (bicubic,
antialiased). We resize with torch's uint8 antialiased bicubic kernel, which
reproduces PIL to within rounding (mean |diff| < 0.01 grey level on real
frames) at ~2 ms for 720p -> 512. OpenCV's INTER_AREA was tried first: ~1 grey
level off, enough to move the edges of random-weight masks (IoU 0.98 vs the
official loader) - see tests/engine/test_frames.py.
Postprocess: bilinear upsampling of low-res mask logits to the source size; masks
(upsample_masks) only inside each mask's box (the rest of a 720p frame is known False).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidFrameError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_frame(frame: np.ndarray) -> None:
    """Raise InvalidFrameError unless frame is a non-empty uint8 HxWx3 array."""
    if not isinstance(frame, np.ndarray):
        raise InvalidFrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InvalidFrameError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InvalidFrameError(f"frame must be HxWx3 RGB, got shape {frame.shape}")


def resize_rgb(frame: np.ndarray, image_size: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, S, S) uint8, PIL-style antialiased bicubic."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None]
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bicubic", antialias=True,
                          align_corners=False)
    return x[0]


def normalize(rgb: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """(3, S, S) uint8 -> (1, 3, S, S) float32, ImageNet-normalised."""
    x = rgb.to(device).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=x.device)[:, None, None]
    return ((x - mean) / std).unsqueeze(0)


def preprocess(frame: np.ndarray, image_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (H, W, 3) RGB of any size -> (1, 3, S, S) float32 model input."""
    check_frame(frame)
    return normalize(resize_rgb(frame, image_size), device)


def upsample_logits(low_res: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 1, h, w) mask logits -> (B, 1, H, W) logits at the source size (bilinear, as official)."""
    if low_res.shape[-2:] == (height, width):
        return low_res
    return F.interpolate(low_res.float(), size=(height, width), mode="bilinear", align_corners=False)



@dataclass(frozen=True)
class _Axis:
    """Bilinear source indices and weights of one output axis (align_corners=False, as torch)."""

    i0: torch.Tensor  # (n,) int64
    i1: torch.Tensor
    w0: torch.Tensor  # (n,) float32
    w1: torch.Tensor


@lru_cache(maxsize=32)
def _axis(n_in: int, n_out: int) -> _Axis:
    # torch's area_pixel_compute_source_index + guard_index_and_lambda, in float32 like its kernel
    scale = torch.tensor(n_in / n_out, dtype=torch.float32)
    src = (scale * (torch.arange(n_out, dtype=torch.float32) + 0.5) - 0.5).clamp_(min=0)
    i0 = src.floor().long().clamp_(max=n_in - 1)
    lam = (src - i0.float()).clamp_(0, 1)
    return _Axis(i0, (i0 + 1).clamp_(max=n_in - 1), 1 - lam, lam)


def _span(ax: _Axis, lo: int, hi: int) -> tuple[int, int]:
    """Output range [a, b) whose pixels read any input index in [lo, hi] (a run of indices)."""
    hit = ((ax.i0 >= lo) & (ax.i0 <= hi)) | ((ax.i1 >= lo) & (ax.i1 <= hi))
    idx = hit.nonzero()
    return int(idx[0]), int(idx[-1]) + 1


def upsample_masks(low_res: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(B, 1, h, w) mask logits -> (B, H, W) bool masks `upsample_logits(...) > 0`, computed only
    inside each mask's box.

    A bilinear output is a convex combination of its (up to) four input neighbours, so it can be
    > 0 only where one of them is: outside the box of the positive input pixels, widened by one,
    the mask is False without computing it. Inside, the same arithmetic as torch's kernel
    (float32 indices and weights, rows then columns); results agree with the full upsampling
    except where a logit is within float rounding of 0 (tests/engine/test_frames.py).
    """
    low = low_res[:, 0].float().cpu()
    out = np.zeros((low.size(0), height, width), dtype=bool)
    if low.shape[-2:] == (height, width):
        return (low > 0).numpy()
    ay, ax = _axis(low.size(1), height), _axis(low.size(2), width)
    for b in range(low.size(0)):
        pos = low[b] > 0
        rows, cols = pos.any(1).nonzero(), pos.any(0).nonzero()
        if not len(rows):
            continue
        y0, y1 = _span(ay, int(rows[0]), int(rows[-1]))
        x0, x1 = _span(ax, int(cols[0]), int(cols[-1]))
        lo = low[b]
        wy0, wy1 = ay.w0[y0:y1, None], ay.w1[y0:y1, None]
        wx0, wx1 = ax.w0[x0:x1], ax.w1[x0:x1]
        top, bottom = lo[ay.i0[y0:y1]], lo[ay.i1[y0:y1]]
        c0, c1 = ax.i0[x0:x1], ax.i1[x0:x1]
        val = wy0 * (wx0 * top[:, c0] + wx1 * top[:, c1]) + wy1 * (wx0 * bottom[:, c0] + wx1 * bottom[:, c1])
        out[b, y0:y1, x0:x1] = (val > 0).numpy()
    return out
