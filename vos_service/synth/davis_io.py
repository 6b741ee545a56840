"""Write synthetic clips in the DAVIS layout, so ``vos-service eval`` and DAVIS tools read them.

    <root>/JPEGImages/<name>/00000.jpg ...   RGB frames
    <root>/Annotations/<name>/00000.png ...  palette PNGs, pixel value = object id
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vos_service.synth.generator import generate_clip
from vos_service.synth.types import Clip, SynthOptions

__all__ = ["DavisSequence", "davis_palette", "write_davis", "write_davis_set", "write_palette_png"]

JPEG_QUALITY = 95


@dataclass(frozen=True)
class DavisSequence:
    name: str
    images_dir: Path       # <root>/JPEGImages/<name>
    annotations_dir: Path  # <root>/Annotations/<name>


def davis_palette() -> bytes:
    """The 256-colour PASCAL VOC / DAVIS palette (id 1 dark red, 2 green, ...), 768 bytes."""
    pal = bytearray(768)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for bit in range(8):  # spread the id's bits over the high bits of R, G and B
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        pal[3 * i:3 * i + 3] = bytes((r, g, b))
    return bytes(pal)


_PALETTE = davis_palette()


def write_palette_png(path: Path | str, ids: np.ndarray) -> None:
    """Save an HxW uint8 id map as an indexed PNG with the DAVIS palette."""
    if ids.ndim != 2 or ids.dtype != np.uint8:
        raise ValueError(f"ids must be an HxW uint8 array, got {ids.dtype} {ids.shape}")
    im = Image.frombytes("P", (ids.shape[1], ids.shape[0]), np.ascontiguousarray(ids).tobytes())
    im.putpalette(_PALETTE)
    im.save(path, optimize=False)


def write_davis(clip: Clip, root: Path | str, name: str) -> DavisSequence:
    """Write the clip's frames (JPEG) and masks (palette PNG) under ``root`` as sequence ``name``."""
    root = Path(root)
    seq = DavisSequence(name, root / "JPEGImages" / name, root / "Annotations" / name)
    seq.images_dir.mkdir(parents=True, exist_ok=True)
    seq.annotations_dir.mkdir(parents=True, exist_ok=True)
    for t, (frame, mask) in enumerate(zip(clip.frames, clip.masks)):
        Image.fromarray(frame).save(seq.images_dir / f"{t:05d}.jpg", quality=JPEG_QUALITY)
        write_palette_png(seq.annotations_dir / f"{t:05d}.png", mask)
    return seq


def write_davis_set(root: Path | str, seeds: Iterable[int], *, prefix: str = "synth", num_frames: int = 24,
                    size: tuple[int, int] = (256, 256), num_objects: int = 2,
                    options: SynthOptions | None = None) -> list[DavisSequence]:
    """Generate one clip per seed and write each as ``<prefix>_<seed>``; e.g. the held-out
    test set is ``write_davis_set(root, heldout_seeds(50))``."""
    return [write_davis(generate_clip(s, num_frames=num_frames, size=size, num_objects=num_objects,
                                      options=options), root, f"{prefix}_{s}")
            for s in seeds]
