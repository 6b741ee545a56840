"""Scheduler: fair round-robin across streams, batches filled across streams, no stream starved.

Sessions are stand-ins with the four calls the scheduler makes (has_frame, take_frame,
has_control, closed): the policy is tested alone, bounded by counts, not by the clock.
"""

from __future__ import annotations

import threading
from collections import Counter, deque

from vos_service.runtime.scheduler import Scheduler


class FakeSession:
    def __init__(self, name: str, frames: int = 0) -> None:
        self.name = name
        self.frames = deque(range(frames))
        self.controls = 0
        self.closed = False

    def has_frame(self) -> bool:
        return bool(self.frames)

    def take_frame(self):
        return (self.name, self.frames.popleft()) if self.frames else None

    def has_control(self) -> bool:
        return self.controls > 0


def scheduler(sessions: list[FakeSession], max_batch: int, max_wait_s: float = 0.0, batching: bool = True):
    return Scheduler(lambda: list(sessions), max_batch=max_batch, max_wait_s=max_wait_s, batching=batching)


def names(batch) -> list[str]:
    return [s.name for s, _ in batch]


def test_round_robin_serves_every_stream_once_before_any_twice():
    sessions = [FakeSession(f"s{i}", frames=10) for i in range(5)]
    sched = scheduler(sessions, max_batch=2)
    served: Counter[str] = Counter()
    for _ in range(20):  # 40 frames of the 50
        batch = sched.next_batch(idle_timeout=1.0)
        assert len(batch) == 2 and len(set(names(batch))) == 2  # distinct streams in a batch
        served.update(names(batch))
        assert max(served.values()) - min(served[s.name] for s in sessions) <= 1
    assert all(served[s.name] == 8 for s in sessions)


def test_frames_of_one_stream_come_out_in_order_one_per_batch():
    only = FakeSession("a", frames=4)
    sched = scheduler([only], max_batch=4)
    assert [sched.next_batch(1.0)[0][1] for _ in range(4)] == [("a", 0), ("a", 1), ("a", 2), ("a", 3)]


def test_a_batch_takes_one_frame_from_each_ready_stream_up_to_max_batch():
    sessions = [FakeSession(f"s{i}", frames=3) for i in range(6)]
    sched = scheduler(sessions, max_batch=4)
    first, second = sched.next_batch(1.0), sched.next_batch(1.0)
    assert len(first) == 4 and len(second) == 4
    assert set(names(first)) | set(names(second)) == {s.name for s in sessions}  # the cursor moved on


def test_the_fill_wait_ends_as_soon_as_the_batch_is_full():
    sessions = [FakeSession("a", frames=1), FakeSession("b"), FakeSession("c")]
    sched = scheduler(sessions, max_batch=3, max_wait_s=60.0)  # a wait that would time the test out

    def arrive() -> None:
        sessions[1].frames.append(0)
        sessions[2].frames.append(0)
        sched.notify()

    threading.Timer(0.05, arrive).start()
    assert sorted(names(sched.next_batch(idle_timeout=60.0))) == ["a", "b", "c"]


def test_no_fill_wait_when_every_stream_is_ready_or_batching_is_off():
    sessions = [FakeSession("a", frames=2), FakeSession("b")]
    off = scheduler(sessions, max_batch=4, max_wait_s=60.0, batching=False)
    assert (off.max_batch, off.max_wait_s) == (1, 0.0)
    assert names(off.next_batch(1.0)) == ["a"]  # b never gets a frame: without batching it is not awaited
    both = [FakeSession("a", frames=1), FakeSession("b", frames=1)]
    assert sorted(names(scheduler(both, max_batch=2, max_wait_s=60.0).next_batch(1.0))) == ["a", "b"]


def test_a_busy_stream_does_not_starve_the_others():
    busy, quiet = FakeSession("busy", frames=1000), FakeSession("quiet", frames=1)
    late = FakeSession("late")
    sessions = [busy, quiet, late]
    sched = scheduler(sessions, max_batch=1)
    order = [names(sched.next_batch(1.0))[0] for _ in range(2)]
    assert sorted(order) == ["busy", "quiet"]  # the quiet stream's one frame goes within a round
    late.frames.extend(range(3))
    order = [names(sched.next_batch(1.0))[0] for _ in range(4)]
    assert order.count("late") == 2 and "late" in order[:2]  # a stream that became ready is served next round


def test_closed_streams_are_skipped_and_controls_do_not_wait_for_frames():
    gone, idle = FakeSession("gone", frames=5), FakeSession("idle")
    gone.closed = True
    sched = scheduler([gone, idle], max_batch=2)
    assert sched.next_batch(idle_timeout=0.05) == []  # nothing ready: [] after the idle timeout
    idle.controls = 1
    assert sched.next_batch(idle_timeout=60.0) == []  # a waiting control returns at once, not after 60 s
