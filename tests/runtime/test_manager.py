"""The runtime without transport: queues, scheduler, worker loop, control, lifecycle."""

from __future__ import annotations

import time

import pytest

from tests.engine.factories import real_frames
from tests.runtime.factories import Collector, make_manager
from vos_service.engine.types import Prompt
from vos_service.runtime.types import (
    CloseReason,
    DropNotice,
    DropReason,
    FrameOutput,
    FrameTask,
    LimitExceededError,
    PromptControl,
    PromptSpec,
    StreamClosed,
    StreamExistsError,
    StreamMode,
    StreamNotFoundError,
    StreamSpec,
    StreamState,
)

FRAMES = real_frames("01_dog.mp4", count=12, stride=2)
CLICK = Prompt.from_points([[640, 360]], [1])


def spec(sid="cam", mode=StreamMode.LOSSLESS, prompts=(PromptSpec(1, CLICK),)):
    return StreamSpec(sid, 1280, 720, mode, tuple(prompts))


def offer_all(session, frames, start=0):
    for i, f in enumerate(frames):
        while (fut := session.offer(FrameTask(start + i, f, capture_ts=i / 30, received_at=time.monotonic()))):
            fut.result(timeout=60)


@pytest.fixture
def manager():
    m = make_manager()
    yield m
    m.shutdown(drain_timeout=1)


def test_lossless_stream_every_frame_in_order_with_initial_prompt(manager):
    sink = Collector()
    s = manager.open(spec(), sink)
    offer_all(s, FRAMES)
    outs = sink.take(len(FRAMES), kind=FrameOutput)
    assert [o.frame_index for o in outs] == list(range(len(FRAMES)))
    assert all([ob.obj_id for ob in o.result.objects] == [1] for o in outs)
    assert outs[0].result.objects[0].prompted and outs[0].capture_ts == 0.0
    assert s.info().processed == len(FRAMES) and s.info().dropped == 0


def test_live_mode_drops_oldest_and_counts(manager):
    m = make_manager(**{"streams.queue_size": 2})
    try:
        sink = Collector()
        s = m.open(spec("live", StreamMode.LIVE), sink)
        for i in range(12):  # far faster than the worker
            assert s.offer(FrameTask(i, FRAMES[i % len(FRAMES)], received_at=time.monotonic())) is None
        deadline = time.monotonic() + 60
        while s.info().processed + s.info().dropped < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        info = s.info()
        assert info.dropped > 0 and info.processed + info.dropped == 12
        events = []
        while not sink.q.empty():
            events.append(sink.q.get())
        drops = [e.frame_index for e in events if isinstance(e, DropNotice)]
        done = [e.frame_index for e in events if isinstance(e, FrameOutput)]
        assert len(drops) == info.dropped and sorted(drops + done) == list(range(12))
        assert 11 in done  # the newest frame is never the one dropped
    finally:
        m.shutdown(drain_timeout=1)


def test_correction_via_control_revises_and_sticks(manager):
    sink = Collector()
    s = manager.open(spec(), sink)
    offer_all(s, FRAMES[:6])
    sink.take(6, kind=FrameOutput)
    fut = s.control(PromptControl(PromptSpec(1, Prompt.from_points([[700, 300], [560, 420]], [1, 0]),
                                             frame_index=4)))
    outputs = fut.result(timeout=60)
    assert [o.frame_index for o in outputs] == [4, 5] and all(o.revised for o in outputs)
    assert all(o.result.objects[0].revision == 1 for o in outputs)
    assert all(o.revision == 1 for o in outputs)  # the frame's second publication
    assert [o.frame_index for o in sink.take(2, kind=FrameOutput)] == [4, 5]
    offer_all(s, FRAMES[6:8], start=6)
    assert [o.frame_index for o in sink.take(2, kind=FrameOutput)] == [6, 7]


def test_close_unknown_duplicate_and_limits(manager):
    sink = Collector()
    manager.open(spec("a"), sink)
    with pytest.raises(StreamExistsError):
        manager.open(spec("a"), sink)
    with pytest.raises(StreamNotFoundError):
        manager.get("nope")
    with pytest.raises(LimitExceededError):
        manager.open(StreamSpec("huge", 8000, 8000), sink)
    assert manager.close(manager.get("a"), CloseReason.CLOSED_BY_REQUEST)
    assert sink.take(1, kind=StreamClosed)[0].reason is CloseReason.CLOSED_BY_REQUEST
    assert manager.list() == []


def test_idle_stream_is_closed_and_freed():
    m = make_manager(**{"streams.idle_timeout_s": 0.3})
    try:
        sink = Collector()
        s = m.open(spec("idle"), sink)
        offer_all(s, FRAMES[:2])
        closed = sink.take(1, kind=StreamClosed, timeout=30)[0]
        assert closed.reason is CloseReason.IDLE_TIMEOUT and m.list() == []
        deadline = time.monotonic() + 30  # the worker frees the tracker at its next fixed point
        while s.tracker.nbytes() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert s.tracker.nbytes() == 0
    finally:
        m.shutdown(drain_timeout=1)


def test_frames_of_several_streams_share_one_encoder_pass():
    m = make_manager(**{"scheduler.max_wait_ms": 200.0})
    try:
        sinks = [Collector() for _ in range(3)]
        sessions = [m.open(spec(f"s{i}"), sinks[i]) for i in range(3)]
        for k in range(4):
            for s in sessions:
                s.offer(FrameTask(k, FRAMES[k], received_at=time.monotonic()))
        for sink in sinks:
            sink.take(4, kind=FrameOutput)
        batches = m.metrics.registry.get_sample_value("vos_encoder_batch_size_sum")
        count = m.metrics.registry.get_sample_value("vos_encoder_batch_size_count")
        assert batches == 12 and count < 12  # 12 frames in fewer than 12 encoder passes
    finally:
        m.shutdown(drain_timeout=1)


def test_a_frames_prompts_apply_all_or_nothing():
    """17 inline clicks with max_objects 16: nothing is added, the frame is refused whole (was: 2-16
    added and published, then the frame lost its result), and the next frame is tracked normally."""
    m = make_manager(**{"streams.max_objects": 16})
    try:
        sink = Collector()
        s = m.open(spec("many", prompts=()), sink)
        offer_all(s, FRAMES[:1])
        assert sink.take(1, kind=FrameOutput)[0].result.objects == []
        clicks = tuple(PromptSpec(i, Prompt.from_points([[40 * i + 20, 300]], [1])) for i in range(2, 19))
        s.offer(FrameTask(1, FRAMES[1], received_at=time.monotonic(), prompts=clicks))
        drop = sink.take(1, kind=DropNotice)[0]
        assert drop.frame_index == 1 and drop.reason is DropReason.REFUSED and "max_objects=16" in drop.detail
        assert s.tracker.objects == {}
        s.offer(FrameTask(2, FRAMES[2], received_at=time.monotonic(), prompts=clicks[:16]))
        out = sink.take(1, kind=FrameOutput)[0]
        assert out.frame_index == 2 and len(out.result.objects) == 16
    finally:
        m.shutdown(drain_timeout=1)


def test_every_republication_of_a_frame_has_a_higher_revision(manager):
    """Adding an object on the latest frame re-publishes it: its revision must rise (was: same revision)."""
    sink = Collector()
    s = manager.open(spec(), sink)
    offer_all(s, FRAMES[:3])
    first = sink.take(3, kind=FrameOutput)
    assert [o.revision for o in first] == [0, 0, 0]
    for obj_id, expect in ((2, 1), (3, 2)):
        (out,) = s.control(PromptControl(PromptSpec(obj_id, Prompt.from_points([[300, 200]], [1])))).result(60)
        assert out.frame_index == 2 and out.revision == expect
        assert max(o.revision for o in out.result.objects) == 0  # object revisions alone could not tell


def test_close_is_immediate_and_frees_the_id(manager):
    """A close takes effect at once (id free, nothing emitted after `closed`), even while the worker
    is busy; the tracker is freed by the worker afterwards."""
    sink = Collector()
    s = manager.open(spec("re"), sink)
    for i in range(4):
        s.offer(FrameTask(i, FRAMES[i], received_at=time.monotonic()))
    assert manager.close(s, CloseReason.CLIENT_DISCONNECTED)
    assert not manager.close(s, CloseReason.CLIENT_DISCONNECTED)  # exactly once
    assert s.state is StreamState.CLOSED
    again = manager.open(spec("re"), Collector())  # no ALREADY_EXISTS window
    assert manager.get("re") is again
    events = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            events.append(sink.q.get(timeout=0.2))
        except Exception:  # queue.Empty: nothing more came
            break
    closed_at = next(i for i, e in enumerate(events) if isinstance(e, StreamClosed))
    assert closed_at == len(events) - 1  # nothing after `closed`
