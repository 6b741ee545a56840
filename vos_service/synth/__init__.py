"""Seeded synthetic videos with per-object ground-truth masks, for training and evaluation.

``generate_clip(seed, ...)`` draws textured and coloured shapes (ellipses, polygons,
stars, patches cut from real frames) moving over textured backgrounds, with scale,
rotation and deformation, occlusion in z-order, objects leaving and re-entering the
frame, look-alike distractors, camera shake and lighting changes. ``write_davis`` saves
a clip in the DAVIS layout.

Seeds >= ``TEST_SEED_START`` (1_000_000) are the held-out test set: never train on them
(``train_seeds`` / ``heldout_seeds`` hand out the two ranges).
"""

from vos_service.synth.davis_io import DavisSequence, davis_palette, write_davis, write_davis_set, write_palette_png
from vos_service.synth.generator import generate_clip
from vos_service.synth.types import (
    DEFAULT_VIDEOS_DIR,
    TEST_SEED_START,
    VAL_SEED_START,
    ActorMeta,
    Clip,
    ClipMeta,
    Split,
    SynthOptions,
    heldout_seeds,
    split_of,
    train_seeds,
)

__all__ = [
    "DEFAULT_VIDEOS_DIR",
    "TEST_SEED_START",
    "VAL_SEED_START",
    "ActorMeta",
    "Clip",
    "ClipMeta",
    "DavisSequence",
    "Split",
    "SynthOptions",
    "davis_palette",
    "generate_clip",
    "heldout_seeds",
    "split_of",
    "train_seeds",
    "write_davis",
    "write_davis_set",
    "write_palette_png",
]
