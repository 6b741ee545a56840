"""StreamTracker behaviour: batching, corrections, revisions, control, errors, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.factories import make_model, make_tracker, normalised, real_frames
from vos_service.engine.errors import FrameNotAvailableError, InvalidFrameError, InvalidPromptError, UnknownObjectError
from vos_service.engine.memory import MemoryConfig
from vos_service.engine.types import Prompt

S = 256


@pytest.fixture(scope="module")
def model():
    return make_model(S)


@pytest.fixture(scope="module")
def clip():
    frames = real_frames(count=20)
    return frames, normalised(frames, S)


def feed(tr, imgs, t, H=720, W=1280):
    return tr.step(tr.encode_images(imgs[t:t + 1])[0], H, W)


def test_batched_objects_equal_one_at_a_time(model, clip):
    frames, imgs = clip
    mask = np.zeros((720, 1280), bool)
    mask[300:520, 820:1100] = True
    prompts = {1: Prompt.from_points([[640, 360]], [1]), 2: Prompt(box=(100, 380, 420, 700)),
               3: Prompt(mask=mask)}
    together = make_tracker(model)
    alone = {oid: make_tracker(model) for oid in prompts}
    for t in range(len(frames)):
        rt = feed(together, imgs, t)
        ra = {oid: feed(tr, imgs, t) for oid, tr in alone.items()}
        if t == 0:
            for oid, p in prompts.items():
                rt = together.add_prompt(oid, p)[0]
                ra[oid] = alone[oid].add_prompt(oid, p)[0]
        assert len(rt.objects) == 3
        for o in rt.objects:
            a = ra[o.obj_id].by_id()[o.obj_id]
            assert (o.mask == a.mask).mean() >= 0.999
            assert abs(o.score - a.score) < 1e-4 and abs(o.iou - a.iou) < 1e-4


def test_correction_behind_latest_revises_later_frames(model, clip):
    frames, imgs = clip
    tr = make_tracker(model)
    for t in range(10):
        feed(tr, imgs, t)
        if t == 0:
            tr.add_prompt(7, Prompt.from_points([[640, 360]], [1]))
    revised = tr.add_prompt(7, Prompt.from_points([[700, 300], [560, 420]], [1, 0]), frame_index=6)
    assert [r.frame_index for r in revised] == [6, 7, 8, 9]
    first = revised[0].by_id()[7]
    assert first.prompted and first.revision == 1
    assert all(r.by_id()[7].revision == 1 and not r.by_id()[7].prompted for r in revised[1:])
    # the correction is a prompted memory now: it sticks for the frames that follow
    assert 6 in tr.objects[7].memory.prompted
    nxt = feed(tr, imgs, 10).by_id()[7]
    assert nxt.revision == 0


def test_objects_added_removed_and_reset(model, clip):
    frames, imgs = clip
    tr = make_tracker(model)
    feed(tr, imgs, 0)
    tr.add_prompt(1, Prompt.from_points([[640, 360]], [1]))
    feed(tr, imgs, 1)
    tr.add_prompt(2, Prompt(box=(100, 380, 420, 700)))
    assert sorted(o.obj_id for o in feed(tr, imgs, 2).objects) == [1, 2]
    tr.remove_object(1)
    assert [o.obj_id for o in feed(tr, imgs, 3).objects] == [2]
    with pytest.raises(UnknownObjectError):
        tr.remove_object(1)
    tr.reset()
    assert tr.next_frame == 0 and not tr.objects and feed(tr, imgs, 4).objects == []


def test_prompted_bank_stays_bounded_in_the_tracker(model, clip):
    frames, imgs = clip
    tr = make_tracker(model, memory=MemoryConfig(max_prompted=3))
    for t in range(12):
        feed(tr, imgs, t)
        tr.add_prompt(1, Prompt.from_points([[640, 360]], [1]))  # a correction on every frame
    assert sorted(tr.objects[1].memory.prompted) == [0, 10, 11]


def test_bad_input_is_refused_and_loses_nothing(model, clip):
    frames, imgs = clip
    tr = make_tracker(model, feature_ring=4)
    with pytest.raises(InvalidPromptError):
        tr.add_prompt(1, Prompt.from_points([[1, 1]], [1]))  # no frame yet
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((0, 5, 3), np.uint8)):
        with pytest.raises(InvalidFrameError):
            tr.track(bad)
    assert tr.next_frame == 0
    tr.track(frames[0])
    tr.add_prompt(1, Prompt.from_points([[640, 360]], [1]))
    for bad in (Prompt.from_points([[2000, 10]], [1]), Prompt.from_points([[5, 5]], [3]),
                Prompt(box=(10, 10, 5, 5)), Prompt(mask=np.ones((5, 5), bool)), Prompt()):
        with pytest.raises(InvalidPromptError):
            tr.add_prompt(1, bad)
    for t in range(1, 6):
        tr.track(frames[t])
    with pytest.raises(FrameNotAvailableError):
        tr.add_prompt(1, Prompt.from_points([[640, 360]], [1]), frame_index=1)  # ring holds 2..5
    r = tr.track(frames[6])
    assert r.frame_index == 6 and [o.obj_id for o in r.objects] == [1]


def test_tracker_bytes_flat_over_1000_frames(clip):
    """All tensors the tracker holds stop growing after warm-up, corrections included."""
    frames, _ = clip
    small = make_model(128)
    imgs = normalised(frames, 128)
    tr = make_tracker(small, feature_ring=4, memory=MemoryConfig(max_prompted=3))
    sizes = {}
    for t in range(1000):
        tr.step(tr.encode_images(imgs[t % len(frames):t % len(frames) + 1])[0], 720, 1280)
        if t == 0:
            tr.add_prompt(1, Prompt.from_points([[640, 360]], [1]))
            tr.add_prompt(2, Prompt(box=(100, 380, 420, 700)))
        if t % 97 == 5:  # corrections, some of them behind the latest frame
            tr.add_prompt(1 + t % 2, Prompt.from_points([[600, 350]], [1]), frame_index=t - (t % 3))
        if t >= 50 and t % 50 == 0:
            sizes[t] = tr.nbytes()
    values = list(sizes.values())
    assert max(values) - min(values) <= 0.02 * max(values), sizes
    assert max(values[len(values) // 2:]) <= max(values[:len(values) // 2])
