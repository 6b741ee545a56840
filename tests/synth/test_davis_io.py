"""Synthetic clips written in the DAVIS layout."""

from __future__ import annotations

import numpy as np
from PIL import Image

from vos_service.synth import SynthOptions, davis_palette, generate_clip, write_davis, write_davis_set

OPTS = SynthOptions(real_patch_prob=0.0, real_background_prob=0.0, videos_dir=None)


def test_write_davis_layout_and_round_trip(tmp_path):
    clip = generate_clip(2, num_frames=5, size=(64, 96), num_objects=2, options=OPTS)
    seq = write_davis(clip, tmp_path, "clip2")
    assert seq.images_dir == tmp_path / "JPEGImages" / "clip2"
    assert seq.annotations_dir == tmp_path / "Annotations" / "clip2"
    assert sorted(p.name for p in seq.images_dir.iterdir()) == [f"{i:05d}.jpg" for i in range(5)]
    assert sorted(p.name for p in seq.annotations_dir.iterdir()) == [f"{i:05d}.png" for i in range(5)]
    for t in range(5):
        with Image.open(seq.annotations_dir / f"{t:05d}.png") as im:
            assert im.mode == "P"
            assert bytes(im.getpalette()[:9]) == davis_palette()[:9]
            np.testing.assert_array_equal(np.array(im), clip.masks[t])
        with Image.open(seq.images_dir / f"{t:05d}.jpg") as im:
            rgb = np.array(im.convert("RGB")).astype(int)
            assert np.abs(rgb - clip.frames[t]).mean() < 6  # JPEG, not lossless


def test_palette_is_the_davis_one():
    pal = davis_palette()
    assert len(pal) == 768
    assert pal[0:3] == bytes((0, 0, 0)) and pal[3:6] == bytes((128, 0, 0)) and pal[6:9] == bytes((0, 128, 0))
    assert pal[9:12] == bytes((128, 128, 0)) and pal[12:15] == bytes((0, 0, 128))


def test_write_davis_set(tmp_path):
    seqs = write_davis_set(tmp_path, [5, 6], num_frames=3, size=(32, 32), num_objects=1, options=OPTS)
    assert [s.name for s in seqs] == ["synth_5", "synth_6"]
    assert all(len(list(s.annotations_dir.glob("*.png"))) == 3 for s in seqs)
