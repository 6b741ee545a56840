"""RedisPublisher against real redis-server processes, including kills and restarts."""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
import time

import redis

from tests.publish.conftest import (
    DEADLINE_S,
    fill_until_oom,
    first_of_each_frame,
    make_masklet,
    read_masklets,
    wait_until,
)
from vos_service.publish import (
    EVENTS_KEY,
    EventMessage,
    EventType,
    MaskletMessage,
    ObjectMasklet,
    RedisPublisher,
    start_redis,
)

# Fast reconnects keep the outage tests short; production defaults are 0.05 .. 2 s.
FAST = dict(backoff_initial_s=0.01, backoff_max_s=0.1)
PUBLISH_BUDGET_S = 0.005  # one publish() call, even with Redis down


class Hooks:
    """Counts what the on_* hooks report, as a metrics module would."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.published = self.dropped = self.failures = 0

    def on_published(self, n: int) -> None:
        with self.lock:
            self.published += n

    def on_dropped(self, n: int) -> None:
        with self.lock:
            self.dropped += n

    def on_failure(self) -> None:
        with self.lock:
            self.failures += 1

    def kwargs(self) -> dict:
        return dict(on_published=self.on_published, on_dropped=self.on_dropped, on_failure=self.on_failure)


def publish_timed(pub: RedisPublisher, messages) -> list[float]:
    """Publish each message; return the wall time (s) of every call the OS did not interrupt.

    On a busy 2-core machine the scheduler can take the CPU away in the middle
    of any call for tens of ms, which says nothing about publish(). A call that
    waited for the sender, a lock held across I/O or a socket would block
    *voluntarily*; only calls with an involuntary context switch are left out.
    """
    durations, preempted = [], 0
    for msg in messages:
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
        t0 = time.perf_counter()
        pub.publish(msg)
        elapsed = time.perf_counter() - t0
        if resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw == before:
            durations.append(elapsed)
        else:
            preempted += 1
    # A publish() that blocked on Redis would be slow on every call, not on a few preempted ones.
    assert preempted <= max(3, len(messages) // 10), f"{preempted} of {len(messages)} calls preempted"
    return durations


def assert_fast(durations: list[float]) -> None:
    slowest = max(durations, default=0.0)
    assert slowest < PUBLISH_BUDGET_S, f"slowest publish() took {slowest * 1e3:.2f} ms"


def test_messages_arrive_in_order_and_decode(redis_server, redis_client):
    hooks = Hooks()
    frames = [make_masklet(i) for i in range(300)]
    events = [EventMessage(EventType.STREAM_OPENED, "cam-1", ts=1.0),
              EventMessage(EventType.OBJECT_ADDED, "cam-1", ts=2.0, obj_id=1, frame_index=0, detail={"by": "op"})]
    with RedisPublisher(redis_server.url, batch_size=32, **hooks.kwargs()) as pub:
        pub.publish(events[0])
        for msg in frames[:150]:
            pub.publish(msg)
        pub.publish(events[1])
        for msg in frames[150:]:
            pub.publish(msg)
        assert pub.flush(DEADLINE_S)
        stats = pub.stats()
    assert read_masklets(redis_client) == frames
    assert [EventMessage.from_fields(f) for _id, f in redis_client.xrange(EVENTS_KEY)] == events
    assert (stats.submitted, stats.published, stats.dropped, stats.rejected, stats.failures,
            stats.buffered, stats.connected) == (302, 302, 0, 0, 0, 0, True)
    assert (hooks.published, hooks.dropped, hooks.failures) == (302, 0, 0)


def test_maxlen_trims_approximately(redis_server, redis_client):
    with RedisPublisher(redis_server.url, maxlen=50) as pub:
        for i in range(1000):
            pub.publish(make_masklet(i, n_objects=0))
        assert pub.flush(DEADLINE_S)
    kept = read_masklets(redis_client)
    # MAXLEN ~ trims whole radix-tree nodes (100 entries by default): at least 50 kept, far fewer than 1000.
    assert 50 <= len(kept) <= 250
    assert [m.frame_index for m in kept] == list(range(1000 - len(kept), 1000))

    with RedisPublisher(redis_server.url, maxlen=None) as pub:
        for i in range(300):
            pub.publish(make_masklet(i, stream_id="untrimmed", n_objects=0))
        assert pub.flush(DEADLINE_S)
    assert redis_client.xlen("vos:untrimmed:masklets") == 300


def test_redis_killed_mid_stream_then_restarted_loses_nothing_within_bound(redis_server, redis_client):
    # stop(kill=True) is an intentional SIGKILL (no supervisor; see test_supervision.py for that).
    hooks = Hooks()
    frames = [make_masklet(i) for i in range(400)]
    with RedisPublisher(redis_server.url, buffer_size=1000, **FAST, **hooks.kwargs()) as pub:
        wait_until(lambda: pub.connected, what="first connection")
        durations = []
        for start in range(0, 400, 20):
            if start == 100:
                redis_server.stop(kill=True)  # SIGKILL while the sender is busy
            durations += publish_timed(pub, frames[start:start + 20])
            time.sleep(0.002)  # a camera-like pace, so some batches are in flight at the kill
        wait_until(lambda: not pub.connected, what="the publisher to notice the outage")
        down = pub.stats()
        # While Redis is down nothing can be acknowledged: everything not yet published waits.
        assert down.buffered == 400 - down.published and down.dropped == 0
        assert down.failures >= 1
        assert_fast(durations)

        redis_server.start()  # same port; the AOF brings back everything acknowledged
        assert pub.flush(DEADLINE_S)
        up = pub.stats()
    got = read_masklets(redis_client)
    # The acknowledged prefix survived the kill; the rest arrives in order (a batch
    # applied but not yet answered at the kill is sent again: readers dedupe).
    assert got[:down.published] == frames[:down.published]
    assert first_of_each_frame(got) == frames
    assert (up.published, up.dropped, up.buffered, up.connected) == (400, 0, 0, True)
    assert (hooks.published, hooks.dropped, hooks.failures) == (400, 0, up.failures)


def test_beyond_the_bound_exactly_the_oldest_are_dropped(redis_server, redis_client):
    hooks = Hooks()
    with RedisPublisher(redis_server.url, buffer_size=50, batch_size=16, **FAST, **hooks.kwargs()) as pub:
        before = [make_masklet(i, stream_id="before") for i in range(10)]
        for msg in before:
            pub.publish(msg)
        assert pub.flush(DEADLINE_S)
        redis_server.stop(kill=True)

        frames = [make_masklet(i) for i in range(80)]
        durations = publish_timed(pub, frames)
        assert_fast(durations)
        wait_until(lambda: pub.stats().failures >= 1, what="a failed send")
        down = pub.stats()
        assert (down.published, down.dropped, down.buffered, down.connected) == (10, 30, 50, False)
        assert not pub.flush(0.05)  # nothing can drain while Redis is down

        redis_server.start()
        assert pub.flush(DEADLINE_S)
        up = pub.stats()
    assert first_of_each_frame(read_masklets(redis_client)) == frames[30:]
    assert (up.submitted, up.published, up.dropped, up.buffered) == (90, 60, 30, 0)
    assert (hooks.published, hooks.dropped, hooks.failures) == (60, 30, up.failures)


def test_a_hung_redis_never_blocks_publish(redis_server, redis_client):
    # SIGSTOP: the kernel still accepts connections, but nothing answers, so
    # every send waits for the socket timeout. A frozen server is the slow case.
    frames = [make_masklet(i) for i in range(200)]
    with RedisPublisher(redis_server.url, socket_timeout_s=0.2, **FAST) as pub:
        wait_until(lambda: pub.connected, what="connected")
        os.kill(redis_server.pid, signal.SIGSTOP)
        try:
            durations = publish_timed(pub, frames)
            wait_until(lambda: pub.stats().failures >= 1, what="a timed-out send")
            assert pub.stats().published == 0 and pub.buffered == 200
        finally:
            os.kill(redis_server.pid, signal.SIGCONT)
        assert_fast(durations)
        assert pub.flush(DEADLINE_S)
        stats = pub.stats()
    assert (stats.published, stats.dropped, stats.buffered) == (200, 0, 0)
    # A timed-out batch may still have been applied once Redis woke up, and was
    # sent again (at-least-once): readers dedupe, and then the order is exact.
    assert first_of_each_frame(read_masklets(redis_client)) == frames


def test_connected_tracks_the_server_while_idle(redis_server):
    with RedisPublisher(redis_server.url, **FAST) as pub:
        wait_until(lambda: pub.connected, what="connected")
        redis_server.stop()
        pub.publish(make_masklet(0))  # an idle publisher learns of the outage on its next send
        wait_until(lambda: not pub.connected, what="disconnected")
        redis_server.start()
        wait_until(lambda: pub.connected, what="reconnected")
        assert pub.flush(DEADLINE_S) and pub.published == 1


def test_bad_messages_are_rejected_without_blocking_the_rest(redis_server, redis_client):
    hooks = Hooks()
    redis_client.set("vos:not-a-stream:masklets", "a plain string")  # XADD will answer WRONGTYPE
    nan = MaskletMessage("cam-1", 99, (ObjectMasklet(1, {"size": [1, 1], "counts": "0"}, score=float("nan")),))
    with RedisPublisher(redis_server.url, **hooks.kwargs()) as pub:
        pub.publish(make_masklet(0))
        pub.publish(nan)  # cannot be encoded: rejected at once, publish() does not raise
        pub.publish(make_masklet(0, stream_id="not-a-stream"))  # Redis refuses it
        pub.publish(make_masklet(1))
        assert pub.flush(DEADLINE_S)
        stats = pub.stats()
    assert read_masklets(redis_client) == [make_masklet(0), make_masklet(1)]
    assert (stats.submitted, stats.published, stats.rejected, stats.dropped, stats.failures) == (4, 2, 2, 0, 2)
    assert (hooks.published, hooks.dropped, hooks.failures) == (2, 0, 2)


def test_a_failing_hook_does_not_stop_publishing(redis_server, redis_client):
    def broken(_n: int) -> None:
        raise RuntimeError("metrics bug")

    with RedisPublisher(redis_server.url, on_published=broken) as pub:
        for i in range(5):
            pub.publish(make_masklet(i))
            assert pub.flush(DEADLINE_S)
    assert len(read_masklets(redis_client)) == 5


def test_close_with_redis_down_is_bounded_and_counts_what_is_left(redis_server):
    hooks = Hooks()
    pub = RedisPublisher(redis_server.url, **FAST, **hooks.kwargs())
    wait_until(lambda: pub.connected, what="connected")
    redis_server.stop(kill=True)
    for i in range(20):
        pub.publish(make_masklet(i))
    t0 = time.monotonic()
    pub.close(timeout=0.3)
    assert time.monotonic() - t0 < 0.3 + 2.0  # + one socket timeout, + slack for a busy machine
    wait_until(lambda: pub.buffered == 0, what="the sender to stop")
    pub.publish(make_masklet(20))  # after close: counted, never raised
    stats = pub.stats()
    assert (stats.submitted, stats.published, stats.dropped, stats.buffered) == (21, 0, 21, 0)
    assert hooks.dropped == 21


def test_publishes_over_a_unix_socket():
    with start_redis(unix_socket=True) as server, RedisPublisher(server.url) as pub:
        assert server.url.startswith("unix://")
        pub.publish(make_masklet(3))
        assert pub.flush(DEADLINE_S)
        client = redis.Redis.from_url(server.url)
        assert read_masklets(client) == [make_masklet(3)]
        client.close()


def test_full_memory_evicts_closed_streams_then_refuses_and_retries_in_order():
    # maxmemory-policy volatile-ttl: only keys with an expiry (closed streams) may be
    # evicted; then XADD gets OOM, a passing server state: the messages wait, in order.
    with start_redis(maxmemory=4 * 1024 * 1024) as server, RedisPublisher(server.url, batch_size=8, **FAST) as pub:
        client = redis.Redis.from_url(server.url, socket_timeout=2.0)
        closed = [make_masklet(i, stream_id="closed") for i in range(20)]
        for msg in closed:
            pub.publish(msg)
        pub.expire("vos:closed:masklets", 3600)  # the stream closed
        assert pub.flush(DEADLINE_S) and client.ttl("vos:closed:masklets") > 0

        ballast = fill_until_oom(client)  # keys without an expiry, like live streams
        assert not client.exists("vos:closed:masklets")  # evicted to make room ...
        assert client.exists(*ballast) == len(ballast)  # ... and nothing else was
        assert client.info("stats")["evicted_keys"] >= 1

        # The ballast's last, refused SET left a little room (its own query buffer counted):
        # publish until the stream fills it and XADD is refused.
        frames: list[MaskletMessage] = []
        while pub.stats().failures < 2:
            assert len(frames) < 100_000, "XADD was never refused"
            chunk = [make_masklet(i) for i in range(len(frames), len(frames) + 50)]
            for msg in chunk:
                pub.publish(msg)
            frames += chunk
            wait_until(lambda: pub.buffered == 0 or pub.stats().failures >= 2, what="a flush or refused sends")
        refused = pub.stats()
        assert refused.rejected == 0 and refused.dropped == 0 and not refused.connected
        assert refused.buffered == 20 + len(frames) - refused.published > 0  # waiting, not lost
        client.delete(*ballast)  # memory again
        more = [make_masklet(i) for i in range(len(frames), len(frames) + 20)]
        for msg in more:
            pub.publish(msg)
        frames += more
        assert pub.flush(DEADLINE_S)
        stats = pub.stats()
        # In order; a pipelined XADD that got through behind a refused one is sent again.
        assert first_of_each_frame(read_masklets(client)) == frames
        client.close()
    assert (stats.published, stats.rejected, stats.dropped, stats.connected) == (20 + len(frames), 0, 0, True)
    assert (stats.expires_submitted, stats.expires_applied) == (1, 1)


def test_logs_never_show_the_password(redis_server, caplog):
    caplog.set_level(logging.INFO, logger="vos_service.publish.publisher")
    with RedisPublisher(redis_server.url, **FAST) as pub:
        wait_until(lambda: pub.connected, what="connected")
        redis_server.stop(kill=True)
        pub.publish(make_masklet(0))
        wait_until(lambda: not pub.connected, what="disconnected")
        redis_server.start()
        assert pub.flush(DEADLINE_S)
    assert "connected to redis://:***@" in caplog.text and "lost redis://:***@" in caplog.text
    assert redis_server.password not in caplog.text
