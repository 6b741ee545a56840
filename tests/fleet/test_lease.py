"""Stream leases against a real redis-server: one owner per stream, expiry after a death,
loss detected by the old owner, release on close."""

from __future__ import annotations

import time

import pytest
import redis

from vos_service.fleet.lease import LeaseHeldError, StreamLeases, lease_key
from vos_service.publish.embedded import EmbeddedRedis
from vos_service.runtime.types import UnavailableError


@pytest.fixture(scope="module")
def server():
    with EmbeddedRedis() as r:
        yield r


def _wait(cond, tries=200, step=0.05):
    for _ in range(tries):  # bounded by a count of polls, not asserted on time
        if cond():
            return True
        time.sleep(step)
    return cond()


def test_one_owner_per_stream_and_release_hands_it_over(server):
    client = redis.Redis.from_url(server.url)
    lost = []
    a, b = (StreamLeases(client, name, 5.0, lost.append) for name in ("a", "b"))
    try:
        a.acquire("s1")
        a.acquire("s1")  # its own lease: kept (a reconnect to the same replica)
        with pytest.raises(LeaseHeldError, match="owned by replica 'a'"):
            b.acquire("s1")
        assert client.get(lease_key("s1")) == b"a" and 0 < client.pttl(lease_key("s1")) <= 5000
        a.release("s1")
        assert _wait(lambda: client.get(lease_key("s1")) is None)
        b.acquire("s1")
        assert b.held() == ["s1"] and a.held() == [] and lost == []
    finally:
        a.close()
        b.close()
    assert client.get(lease_key("s1")) is None  # close gives every lease up


def test_a_dead_owners_lease_expires_and_the_old_owner_learns_it_lost(server):
    client = redis.Redis.from_url(server.url)
    lost_a = []
    a = StreamLeases(client, "a", 0.3, lost_a.append)
    b = StreamLeases(client, "b", 0.3, lambda s: None)
    try:
        a.acquire("s2")
        a._stop.set()  # a "dies": it renews no more (its process would be gone)
        a._wake.set()
        a._thread.join(5)
        assert _wait(lambda: client.get(lease_key("s2")) is None)  # expired after its ttl
        b.acquire("s2")
        assert a.renew_once() == ["s2"] and a.held() == []  # a comes back: lost, it must stop serving
    finally:
        b.close()


def test_renewal_keeps_a_live_lease_past_its_ttl_and_a_taken_one_is_reported(server):
    client = redis.Redis.from_url(server.url)
    lost = []
    a = StreamLeases(client, "a", 1.0, lost.append)
    try:
        a.acquire("s3")
        time.sleep(2.5)  # over two ttls: only the renewal thread (every ttl/3) keeps it
        assert client.get(lease_key("s3")) == b"a"
        client.set(lease_key("s3"), "intruder", px=5000)  # e.g. an operator's or a partition's doing
        assert _wait(lambda: lost == ["s3"])
    finally:
        a.close()
    assert client.get(lease_key("s3")) == b"intruder"  # never deletes a lease it does not hold


def test_redis_unreachable_refuses_the_lease_as_unavailable():
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    leases = StreamLeases(client, "a", 1.0, lambda s: None)
    try:
        with pytest.raises(UnavailableError, match="Redis unreachable"):
            leases.acquire("s4")
    finally:
        leases.close()
