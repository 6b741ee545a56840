"""A supervised EmbeddedRedis: killed by pid, it comes back on the same port with its data."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import redis

from tests.publish.conftest import DEADLINE_S, first_of_each_frame, make_masklet, read_masklets, wait_until
from vos_service.publish import RedisPublisher, masklets_key, start_redis

FAST = dict(backoff_initial_s=0.01, backoff_max_s=0.1)


def _supervisor_alive(port: int) -> bool:
    return any(t.name == f"vos-redis-supervisor-{port}" and t.is_alive() for t in threading.enumerate())


def test_sigkill_mid_stream_loses_nothing_acknowledged_and_the_publisher_delivers_the_rest(supervised_redis):
    server = supervised_redis
    url, port, old_pid = server.url, server.port, server.pid
    key = masklets_key("cam-1")
    client = redis.Redis.from_url(url, socket_timeout=2.0)
    frames = [make_masklet(i) for i in range(400)]
    with RedisPublisher(url, buffer_size=1000, batch_size=16, **FAST) as pub:
        for msg in frames[:100]:
            pub.publish(msg)
        assert pub.flush(DEADLINE_S)
        acked, held = 0, []
        for start in range(100, 400, 20):
            if start == 200:
                acked = pub.published  # acknowledged to the publisher ...
                held = client.xrange(key)  # ... and (a superset) what Redis holds: all replied to
                os.kill(server.pid, signal.SIGKILL)  # a crash, not stop(): the supervisor must notice
            for msg in frames[start:start + 20]:
                pub.publish(msg)
            time.sleep(0.002)  # a camera-like pace, so batches are in flight at the kill
        assert len(held) >= acked >= 100

        wait_until(lambda: server.restarts == 1 and server.running, what="the supervised restart")
        assert (server.url, server.port) == (url, port) and server.pid != old_pid
        # Replayed from the AOF: every entry Redis held before the kill, same ids, same
        # fields, before anything the publisher sends again.
        assert client.xrange(key)[:len(held)] == held

        assert pub.flush(DEADLINE_S)
        stats = pub.stats()
    got = read_masklets(client)
    client.close()
    assert got[:acked] == frames[:acked]
    assert first_of_each_frame(got) == frames  # all 400, in order (a resent batch may repeat)
    assert (stats.published, stats.dropped, stats.rejected, stats.buffered, stats.connected) == (400, 0, 0, 0, True)
    assert stats.failures >= 1


def test_repeated_crashes_are_each_restarted(supervised_redis, redis_client, caplog):
    caplog.set_level(logging.WARNING, logger="vos_service.publish.embedded")
    redis_client.set("k", "v")
    for n in (1, 2, 3):
        os.kill(supervised_redis.pid, signal.SIGKILL)
        wait_until(lambda: supervised_redis.restarts == n and supervised_redis.running,  # noqa: B023 - called here
                   what=f"restart #{n}")
        assert redis_client.get("k") == b"v"
    assert caplog.text.count("exited unexpectedly") == 3
    assert "restart #3" in caplog.text
    assert supervised_redis.password not in caplog.text  # only the redacted URL is logged


def test_stop_is_intentional_and_ends_supervision(supervised_redis):
    server = supervised_redis
    port = server.port
    assert _supervisor_alive(port)
    server.stop(kill=True)  # an outage on purpose: no restart
    assert not _supervisor_alive(port) and not server.running and server.restarts == 0

    server.start()  # supervision resumes with the server
    assert _supervisor_alive(port)
    os.kill(server.pid, signal.SIGKILL)
    wait_until(lambda: server.restarts == 1 and server.running, what="the supervised restart")

    server.stop()  # SIGTERM: Redis exits 0, still no restart
    assert not _supervisor_alive(port) and not server.running and server.restarts == 1
    server.start()
    server.close()
    assert not _supervisor_alive(port) and not server.running


def test_a_failed_restart_is_retried_with_backoff(supervised_redis, caplog):
    caplog.set_level(logging.WARNING, logger="vos_service.publish.embedded")
    server = supervised_redis
    real = server.executable
    server.executable = "/nonexistent/redis-server"  # every restart fails until it is put back
    os.kill(server.pid, signal.SIGKILL)
    wait_until(lambda: caplog.text.count("restart at") >= 2, what="two failed restarts")
    assert not server.running and server.restarts == 0 and "cannot run" in caplog.text
    server.executable = real
    wait_until(lambda: server.restarts == 1 and server.running, what="the restart once possible again")
    assert redis.Redis.from_url(server.url).ping()


def test_an_unsupervised_server_stays_down():
    with start_redis() as server:
        pid = server.pid
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not server.running, what="the exit to be seen")
        assert server.restarts == 0 and not _supervisor_alive(server.port)
