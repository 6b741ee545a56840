"""RedisPublisher.expire: a PEXPIRE queued in order behind the key's XADDs, against real servers."""

from __future__ import annotations

import pytest

from tests.publish.conftest import DEADLINE_S, make_masklet, read_masklets, wait_until
from vos_service.metrics import Metrics
from vos_service.publish import RedisPublisher, masklets_key
from vos_service.publish.publisher import ExpiryGuard
from vos_service.publish.schema import lease_key
from vos_service.runtime.publishing import RedisStreamsPublisher

FAST = dict(backoff_initial_s=0.01, backoff_max_s=0.1)


def test_expire_after_the_last_xadd(redis_server, redis_client):
    key = masklets_key("cam-1")
    frames = [make_masklet(i) for i in range(300)]
    with RedisPublisher(redis_server.url, batch_size=16) as pub:
        for msg in frames:
            pub.publish(msg)
        pub.expire(key, 2)  # queued behind 300 XADDs, most of them not sent yet
        assert pub.flush(DEADLINE_S)
        stats = pub.stats()
        assert 0 < redis_client.pttl(key) <= 2000
        assert read_masklets(redis_client) == frames
    assert (stats.published, stats.buffered) == (300, 0)
    expires = (stats.expires_submitted, stats.expires_applied, stats.expires_dropped, stats.expires_pending)
    assert expires == (1, 1, 0, 0)
    wait_until(lambda: not redis_client.exists(key), what="the key to expire")


def test_expire_waits_out_an_outage_and_is_never_the_one_dropped(redis_server, redis_client):
    a, b = masklets_key("a"), masklets_key("b")
    with RedisPublisher(redis_server.url, buffer_size=10, batch_size=4, **FAST) as pub:
        for i in range(5):
            pub.publish(make_masklet(i, stream_id="a"))
        assert pub.flush(DEADLINE_S)
        redis_server.stop(kill=True)

        pub.publish(make_masklet(5, stream_id="a"))
        pub.expire(a, 60)  # stream a closed while Redis is down
        late = [make_masklet(i, stream_id="b") for i in range(20)]
        for msg in late:
            pub.publish(msg)
        # 10 messages fit: a:5 and b:0..9 are dropped, the expiry stays, in place.
        wait_until(lambda: (pub.stats().dropped, pub.stats().buffered, pub.stats().expires_pending) == (11, 10, 1),
                   what="the bound to settle")
        wait_until(lambda: pub.stats().failures >= 1, what="a failed send")

        redis_server.start()  # the AOF brings back a:0..4
        assert pub.flush(DEADLINE_S)
        stats = pub.stats()
    assert 0 < redis_client.pttl(a) <= 60_000
    assert read_masklets(redis_client, "a") == [make_masklet(i, stream_id="a") for i in range(5)]
    assert read_masklets(redis_client, "b") == late[10:]
    assert redis_client.pttl(b) == -1  # a live stream never expires
    assert (stats.published, stats.dropped, stats.rejected, stats.buffered) == (15, 11, 0, 0)
    assert (stats.expires_applied, stats.expires_dropped, stats.expires_pending) == (1, 0, 0)


def test_persist_cancels_an_earlier_expiry_in_order(redis_server, redis_client):
    key = masklets_key("cam-1")
    with RedisPublisher(redis_server.url, batch_size=4) as pub:
        pub.publish(make_masklet(0))
        pub.expire(key, 1)  # closed ...
        pub.persist(key)  # ... and open again: the later call wins, whatever the batching
        for i in range(1, 10):
            pub.publish(make_masklet(i))
        pub.persist(masklets_key("never-written"))  # no such key: applied, a no-op
        assert pub.flush(DEADLINE_S)
        stats = pub.stats()
    assert redis_client.pttl(key) == -1 and not redis_client.exists(masklets_key("never-written"))
    assert read_masklets(redis_client) == [make_masklet(i) for i in range(10)]
    expires = (stats.expires_submitted, stats.expires_applied, stats.expires_dropped, stats.expires_pending)
    assert expires == (3, 3, 0, 0)


def test_expiries_left_at_close_are_counted(redis_server):
    pub = RedisPublisher(redis_server.url, **FAST)
    wait_until(lambda: pub.connected, what="connected")
    redis_server.stop(kill=True)
    pub.publish(make_masklet(0))
    pub.expire(masklets_key("cam-1"), 10)
    pub.close(timeout=0.2)
    wait_until(lambda: pub.buffered == 0 and pub.stats().expires_pending == 0, what="the sender to stop")
    pub.expire(masklets_key("cam-1"), 10)  # after close: counted, never raised
    stats = pub.stats()
    assert (stats.dropped, stats.buffered) == (1, 0)
    expires = (stats.expires_submitted, stats.expires_applied, stats.expires_dropped, stats.expires_pending)
    assert expires == (2, 0, 2, 0)


@pytest.mark.parametrize("ttl", [0, -1.0, float("nan"), float("inf")])
def test_a_ttl_must_be_positive(redis_server, ttl):
    with RedisPublisher(redis_server.url) as pub:
        with pytest.raises(ValueError):
            pub.expire("k", ttl)
        assert pub.stats().expires_submitted == 0


def test_a_guarded_expiry_spares_a_key_whose_lease_another_replica_holds(redis_server, redis_client):
    # Replica "a" closed cam-1, but its expiry was delayed (an outage) until replica "b" had taken the
    # lease and re-opened the stream: applied then, it would delete b's live masklets within the ttl.
    cases = {"cam-b": b"b", "cam-a": b"a", "cam-free": None}  # stream -> lease owner (None: released)
    for stream, owner in cases.items():
        redis_client.xadd(masklets_key(stream), {"x": "1"})
        if owner is not None:
            redis_client.set(lease_key(stream), owner)
    with RedisPublisher(redis_server.url, **FAST) as pub:
        for stream in cases:
            pub.expire(masklets_key(stream), 30, ExpiryGuard(lease_key(stream), "a"))
        assert pub.flush(DEADLINE_S)
        stats = pub.stats()
    assert redis_client.pttl(masklets_key("cam-b")) == -1  # b's now: untouched
    assert 0 < redis_client.pttl(masklets_key("cam-a")) <= 30_000  # still a's
    assert 0 < redis_client.pttl(masklets_key("cam-free")) <= 30_000  # a's release ran first
    assert redis_client.get(lease_key("cam-b")) == b"b" and redis_client.pttl(lease_key("cam-b")) == -1
    expires = (stats.expires_submitted, stats.expires_applied, stats.expires_dropped, stats.expires_pending)
    assert expires == (3, 3, 0, 0)  # Redis answered all three (the spared one with 0)


def test_a_replica_with_leases_guards_its_closing_expiries(redis_server, redis_client):
    pub = RedisStreamsPublisher(redis_server.url, maxlen=100, buffer_size=100, metrics=Metrics(), key_ttl_s=30)
    pub.lease_owner = "a"
    try:
        for stream in ("mine", "taken"):
            redis_client.xadd(masklets_key(stream), {"x": "1"})
        redis_client.set(lease_key("mine"), "a")
        redis_client.set(lease_key("taken"), "b")
        pub.stream_closed("mine")
        pub.stream_closed("taken")
        assert pub.redis.flush(DEADLINE_S)
    finally:
        pub.close()
    assert 0 < redis_client.pttl(masklets_key("mine")) <= 30_000
    assert redis_client.pttl(masklets_key("taken")) == -1
