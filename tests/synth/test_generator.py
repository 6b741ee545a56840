"""The synthetic clip generator: reproducible, masks true to the pixels, events really happen."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from vos_service.synth import TEST_SEED_START, Split, SynthOptions, generate_clip, heldout_seeds, split_of, train_seeds
from vos_service.synth.real_patches import POOL_FRAMES

PROCEDURAL = SynthOptions(real_patch_prob=0.0, real_background_prob=0.0, videos_dir=None)


def test_same_seed_same_clip():
    a = generate_clip(11, num_frames=12, size=(96, 128), num_objects=3)
    b = generate_clip(11, num_frames=12, size=(96, 128), num_objects=3)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    assert all(np.array_equal(x, y) for x, y in zip(a.masks, b.masks))
    assert a.meta.actors == b.meta.actors


def test_different_seeds_differ():
    a = generate_clip(1, num_frames=4, size=(64, 64), options=PROCEDURAL)
    b = generate_clip(2, num_frames=4, size=(64, 64), options=PROCEDURAL)
    assert not np.array_equal(a.frames[0], b.frames[0])
    assert not np.array_equal(a.masks[0], b.masks[0])


def test_shapes_and_types():
    clip = generate_clip(5, num_frames=6, size=(48, 80), num_objects=3, options=PROCEDURAL)
    assert clip.num_frames == 6 and clip.object_ids == (1, 2, 3)
    for f, m in zip(clip.frames, clip.masks):
        assert f.shape == (48, 80, 3) and f.dtype == np.uint8
        assert m.shape == (48, 80) and m.dtype == np.uint8
        assert set(np.unique(m)) <= {0, 1, 2, 3}
    assert clip.meta.camera.shape == (6, 2)


@pytest.mark.parametrize("seed", range(8))
def test_every_object_is_visible_in_the_first_frame(seed):
    clip = generate_clip(seed, num_frames=2, num_objects=1 + seed % 4, options=PROCEDURAL)
    for i in clip.object_ids:
        assert np.count_nonzero(clip.masks[0] == i) >= 100


def test_masks_match_the_pixels_of_flat_objects():
    # No texture, lighting, noise or camera motion: inside its mask an object's pixels are
    # exactly its colour, and each object's colour appears nowhere else inside the masks.
    opts = SynthOptions.plain(videos_dir=None)
    clip = generate_clip(7, num_frames=10, num_objects=3, options=opts)
    colors = {a.label: np.array(a.color) for a in clip.meta.actors if a.label}
    assert not clip.meta.camera.any()
    for frame, mask in zip(clip.frames, clip.masks):
        for i in clip.object_ids:
            # Eroded, the image border included: edge pixels are partly covered (anti-aliased).
            inner = cv2.erode((mask == i).astype(np.uint8), np.ones((3, 3), np.uint8),
                              borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
            assert (frame[inner] == colors[i]).all()


def test_textured_masks_follow_the_objects():
    # With texture, the mask region still tracks the drawn object: the frame differs from
    # a clip rendered with the same scene minus objects (num_objects=0) mostly inside masks.
    opts = SynthOptions.plain(texture_strength=1.0, videos_dir=None)
    with_objects = generate_clip(9, num_frames=3, num_objects=2, options=opts)
    background = generate_clip(9, num_frames=3, num_objects=0, options=opts)
    for f, g, m in zip(with_objects.frames, background.frames, with_objects.masks):
        changed = np.abs(f.astype(int) - g.astype(int)).max(axis=2) > 2  # anti-aliasing leaks a level
        fg = m > 0
        assert changed[fg].mean() > 0.95          # object pixels are drawn over the background
        edge = cv2.dilate(fg.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert not changed[~edge].any()           # nothing is drawn outside the masks' rim


def test_objects_move_scale_and_rotate():
    clip = generate_clip(3, num_frames=24, num_objects=1, options=SynthOptions.plain(videos_dir=None))
    areas = [np.count_nonzero(m == 1) for m in clip.masks]
    centroids = [np.argwhere(m == 1).mean(axis=0) for m in clip.masks]
    assert max(areas) / min(areas) > 1.1
    assert np.linalg.norm(centroids[-1] - centroids[0]) > 5


def _absent_then_back(visible: np.ndarray, first: int, last: int) -> bool:
    return bool(visible[0] and not visible[first:last + 1].any() and visible[last + 1:].any())


@pytest.mark.parametrize("seed", range(5))
def test_leave_and_reenter(seed):
    opts = SynthOptions(leave_reenter_prob=1.0, occlusion_prob=0.0, num_distractors=(0, 0), videos_dir=None)
    clip = generate_clip(seed, num_frames=24, num_objects=2, options=opts)
    leavers = [a for a in clip.meta.actors if a.leaves is not None]
    assert leavers
    for a in leavers:
        assert _absent_then_back(clip.visible(a.label), *a.leaves), (a, clip.visible(a.label))


@pytest.mark.parametrize("seed", range(5))
def test_full_occlusion(seed):
    opts = SynthOptions(occlusion_prob=1.0, leave_reenter_prob=0.0, videos_dir=None)
    clip = generate_clip(seed, num_frames=24, num_objects=2, options=opts)
    occluders = [a for a in clip.meta.actors if a.occludes is not None]
    assert len(occluders) == 1
    occ = occluders[0]
    victim, first, last = occ.occludes
    assert occ.label == 0 and occ.z == max(a.z for a in clip.meta.actors)
    assert _absent_then_back(clip.visible(victim), first, last), clip.visible(victim)


def test_lookalike_distractors_copy_a_tracked_object():
    opts = SynthOptions(num_distractors=(2, 2), lookalike_prob=1.0, occlusion_prob=0.0, videos_dir=None)
    clip = generate_clip(4, num_objects=2, options=opts)
    lookalikes = [a for a in clip.meta.actors if a.lookalike_of is not None]
    assert len(lookalikes) == 2
    by_label = {a.label: a for a in clip.meta.actors if a.label}
    for d in lookalikes:
        model = by_label[d.lookalike_of]
        assert d.label == 0 and d.shape == model.shape
        assert np.abs(np.subtract(d.color, model.color)).max() < 80
    assert all(set(np.unique(m)) <= {0, 1, 2} for m in clip.masks)  # distractors are never labelled


def test_generation_is_fast():
    generate_clip(0, options=PROCEDURAL)  # warm-up (imports, allocator)
    start = time.perf_counter()
    generate_clip(1, num_frames=24, size=(256, 256), num_objects=3, options=PROCEDURAL)
    assert time.perf_counter() - start < 1.0


def test_seed_split():
    assert split_of(0) is Split.TRAIN and split_of(TEST_SEED_START - 1) is Split.TRAIN
    assert split_of(TEST_SEED_START) is Split.TEST
    assert list(heldout_seeds(2)) == [TEST_SEED_START, TEST_SEED_START + 1]
    with pytest.raises(ValueError):
        train_seeds(10, start=TEST_SEED_START - 5)
    assert generate_clip(TEST_SEED_START, num_frames=1, options=PROCEDURAL).meta.split is Split.TEST


def test_options_are_validated():
    with pytest.raises(ValueError):
        SynthOptions(shape_kinds=("hexagon",))
    with pytest.raises(ValueError):
        SynthOptions(occlusion_prob=1.5)
    with pytest.raises(TypeError):
        SynthOptions(not_an_option=1)  # type: ignore[call-arg]


def test_real_patches_come_from_the_videos_and_respect_the_split(videos_dir: Path):
    opts = SynthOptions(real_patch_prob=1.0, real_background_prob=1.0, videos_dir=videos_dir)
    for seed, split in ((21, Split.TRAIN), (TEST_SEED_START + 21, Split.TEST)):
        clip = generate_clip(seed, num_frames=4, num_objects=2, options=opts)
        sources = [a.texture for a in clip.meta.actors if a.lookalike_of is None] + [clip.meta.background]
        assert all(s.startswith("real:") for s in sources), sources
        frames = {int(s.rsplit("@", 1)[1]) for s in sources}
        parity = 1 if split is Split.TEST else 0
        assert all((f // POOL_FRAMES.step) % 2 == parity for f in frames)


def test_missing_videos_fall_back_to_procedural(tmp_path):
    opts = SynthOptions(real_patch_prob=1.0, real_background_prob=1.0, videos_dir=tmp_path / "none")
    clip = generate_clip(21, num_frames=2, options=opts)
    assert not any(a.texture.startswith("real:") for a in clip.meta.actors)
    assert not clip.meta.background.startswith("real:")


# sha256 over frames and masks of these clips (24 frames, 256 px, 2 objects, default options)
# as they were when the shipped card was scored: the held-out protocol must not drift, or new
# numbers stop being comparable with the card's. Options added since default to off.
HELDOUT_DIGEST = "e02f3fddfba081f8006ada5b9deccf06a0fabf03398d4c5240593adb07dd838a"


def test_the_heldout_clips_are_what_the_card_was_scored_on(videos_dir: Path):
    import hashlib

    h = hashlib.sha256()
    for seed in [*range(TEST_SEED_START, TEST_SEED_START + 6), 900_000, 3, 77]:
        clip = generate_clip(seed, num_frames=24)
        for f, m in zip(clip.frames, clip.masks):
            h.update(f.tobytes())
            h.update(m.tobytes())
    assert h.hexdigest() == HELDOUT_DIGEST


def test_objects_cut_from_real_frames(videos_dir: Path):
    opts = SynthOptions(cutout_prob=1.0, occlusion_prob=1.0, videos_dir=videos_dir)
    clip = next(c for c in (generate_clip(s, num_frames=12, num_objects=2, options=opts) for s in range(30, 60))
                if any(a.occludes for a in c.meta.actors))
    shapes = {a.label: a.shape for a in clip.meta.actors}
    assert shapes[1] == shapes[2] == "cutout"
    assert all(a.texture.startswith("real:") for a in clip.meta.actors if a.shape == "cutout")
    occluder = next(a for a in clip.meta.actors if a.occludes)
    assert occluder.shape == "ellipse"  # the occluder keeps the round outline that hides its victim
    for i in clip.object_ids:
        assert np.count_nonzero(clip.masks[0] == i) >= 100
    # A cut-out's outline is a real region's: ragged, far from the drawn shapes' few corners.
    from vos_service.synth.cutouts import regions_of
    from vos_service.synth.real_patches import load_pool

    regions = [r for f in load_pool(videos_dir, Split.TRAIN) for r in regions_of(f)]
    assert len(regions) >= 50 and np.median([len(r.contour) for r in regions]) >= 12


def test_blur_softens_frames_and_leaves_masks(videos_dir: Path):
    sharp = generate_clip(8, num_frames=3, options=SynthOptions(videos_dir=videos_dir, noise_std=0.0))
    soft = generate_clip(8, num_frames=3, options=SynthOptions(videos_dir=videos_dir, noise_std=0.0, blur_prob=1.0))
    assert all(np.array_equal(a, b) for a, b in zip(sharp.masks, soft.masks))

    def detail(f: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(f.astype(np.float32), cv2.CV_32F)).mean())

    assert all(detail(b) < 0.8 * detail(a) for a, b in zip(sharp.frames, soft.frames))


def test_new_options_are_validated():
    with pytest.raises(ValueError):
        SynthOptions(cutout_prob=-0.1)
    with pytest.raises(ValueError):
        SynthOptions(blur_sigma=(2.0, 1.0))
