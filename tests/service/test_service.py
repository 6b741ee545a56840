"""The whole service as `vos-service serve` runs it: real gRPC, an embedded real
redis-server, the Prometheus endpoint scraped over HTTP, a real clip."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import urllib.request

import numpy as np
import redis

from tests.api.harness import CLICK, FRAMES, model, run
from vos_service.client import VosClient
from vos_service.client.types import Result
from vos_service.config import Settings
from vos_service.io.rle import decode_mask
from vos_service.publish.schema import EVENTS_KEY, EventMessage, MaskletMessage, masklets_key
from vos_service.service import Service


@contextlib.asynccontextmanager
async def service(**overrides):
    settings = Settings().with_overrides({"server.port": 0, "server.metrics_port": 0, "console.port": 0, **overrides})
    svc = Service(settings, model=model())
    ep = await svc.start()
    client = VosClient(f"127.0.0.1:{ep.grpc_port}")
    try:
        await client.wait_ready()
        yield svc, client, redis.Redis.from_url(ep.redis_url)
    finally:
        await client.close()
        await svc.stop()


def redis_masklets(r, sid) -> list[MaskletMessage]:
    return [MaskletMessage.from_fields(f) for _, f in r.xrange(masklets_key(sid))]


async def wait_for(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_stream_results_also_in_redis_and_metrics_over_http():
    async def scenario():
        async with service() as (svc, client, r):
            frames = [(i, f, i / 30) for i, f in enumerate(FRAMES[:8])]
            results = [e async for e in client.stream("cam", frames, mode="lossless", initial_prompts=[(1, CLICK)])
                       if isinstance(e, Result)]
            assert [x.frame_index for x in results] == list(range(8))
            await wait_for(lambda: len(redis_masklets(r, "cam")) >= 8)
            published = redis_masklets(r, "cam")
            assert [m.frame_index for m in published] == list(range(8))
            for res, msg in zip(results, published):
                assert msg.capture_ts == res.capture_ts
                np.testing.assert_array_equal(decode_mask(msg.objects[0].rle), res.masklets[0].mask())
            await wait_for(lambda: r.xlen(EVENTS_KEY) >= 3)
            events = [EventMessage.from_fields(f).type.value for _, f in r.xrange(EVENTS_KEY)]
            assert events[:2] == ["stream_opened", "object_added"] and "stream_closed" in events
            # the RPC is counted when its handler returns, just after the client saw the end
            await wait_for(lambda: svc.metrics.registry.get_sample_value(
                "vos_grpc_server_handled_total",
                {"grpc_service": "vos.v1.VosService", "grpc_method": "StreamFrames", "grpc_code": "OK"}) == 1)
            body = urllib.request.urlopen(f"http://127.0.0.1:{svc.endpoints.metrics_port}/metrics",
                                          timeout=10).read().decode()
            samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in body.splitlines()
                       if line and not line.startswith("#")}
            assert samples['vos_stage_seconds_count{stage="encode"}'] >= 1
            for stage in ("frame_decode", "preprocess", "memory_attention", "mask_decode", "memory_encode",
                          "upsample", "publish"):
                assert samples[f'vos_stage_seconds_count{{stage="{stage}"}}'] >= 7, stage
            assert samples["vos_frame_latency_seconds_count"] == 8
            assert samples["vos_frames_received_total"] == 8 and samples["vos_frames_processed_total"] == 8
            assert samples['vos_grpc_server_handled_total{grpc_code="OK",grpc_method="StreamFrames",'
                           'grpc_service="vos.v1.VosService"}'] == 1
    run(scenario())


def test_a_stream_reopened_within_the_ttl_keeps_its_key():
    # A closed stream's key gets an expiry; XADD keeps a key's TTL, so without the PERSIST queued at
    # open a camera back within the TTL would lose its live masklets when the old expiry ran out.
    async def scenario():
        async with service(**{"redis.key_ttl_s": 600}) as (svc, client, r):
            key = masklets_key("cam")
            frames = [(i, f, i / 30) for i, f in enumerate(FRAMES[:3])]
            [e async for e in client.stream("cam", frames, mode="lossless", initial_prompts=[(1, CLICK)])]
            await wait_for(lambda: r.pttl(key) > 0)  # closed: expires within 600 s
            assert r.pttl(key) <= 600_000 and len(redis_masklets(r, "cam")) == 3
            call = await client.open_stream("cam", 1280, 720, mode="lossless", initial_prompts=[(1, CLICK)])
            await call.send(3, FRAMES[3])
            while not isinstance(await call.read(), Result):  # Opened first
                pass
            await wait_for(lambda: len(redis_masklets(r, "cam")) == 4)
            assert r.pttl(key) == -1  # live again: no expiry on its key
            await call.done_writing()
            while await call.read() is not None:
                pass
            await wait_for(lambda: r.pttl(key) > 0)  # and closed again
            # Redis applies the expiry a moment before the publisher counts its reply
            publisher = svc.manager.publisher.redis
            await wait_for(lambda: publisher.stats().expires_pending == 0)
            stats = publisher.stats()
            assert (stats.expires_submitted, stats.expires_applied, stats.expires_dropped) == (4, 4, 0)
    run(scenario())


def test_correction_is_republished_with_higher_revision():
    async def scenario():
        async with service() as (svc, client, r):
            call = await client.open_stream("cam", 1280, 720, mode="lossless", initial_prompts=[(1, CLICK)])
            got = []
            for i in range(6):
                await call.send(i, FRAMES[i])
            while len([e for e in got if isinstance(e, Result)]) < 6:
                got.append(await call.read())
            revised = await client.add_prompt("cam", 1, points=[[700, 300], [560, 420]], labels=[1, 0],
                                              frame_index=3)
            assert [x.frame_index for x in revised] == [3, 4, 5]
            await wait_for(lambda: len(redis_masklets(r, "cam")) >= 9)
            msgs = redis_masklets(r, "cam")
            latest = {}
            for m in msgs:  # readers keep the highest revision per frame
                if m.frame_index not in latest or m.revision > latest[m.frame_index].revision:
                    latest[m.frame_index] = m
            assert [latest[f].revision for f in range(6)] == [0, 0, 0, 1, 1, 1]
            await call.done_writing()
            events = [EventMessage.from_fields(f) for _, f in r.xrange(EVENTS_KEY)]
            corr = [e for e in events if e.type.value == "correction_applied"]
            assert len(corr) == 1 and corr[0].frame_index == 3 and corr[0].obj_id == 1
    run(scenario())


def test_redis_outage_never_stalls_segmentation_and_buffered_results_arrive_in_order():
    async def scenario():
        async with service(**{"redis.buffer_size": 1000}) as (svc, client, _):
            url = svc.endpoints.redis_url
            svc.redis.stop(kill=True)  # Redis dies before the stream starts
            frames = [(i, FRAMES[i % len(FRAMES)], None) for i in range(10)]
            t0 = time.monotonic()
            results = [e async for e in client.stream("cam", frames, mode="lossless", initial_prompts=[(1, CLICK)])
                       if isinstance(e, Result)]
            assert len(results) == 10  # every frame segmented while Redis was down
            assert svc.manager.publisher.redis.stats().buffered >= 10
            gauge = lambda name: svc.metrics.registry.get_sample_value(name)  # noqa: E731 (what /metrics shows)
            assert gauge("vos_redis_connected") == 0 and gauge("vos_publish_buffered") >= 10  # alerts read these
            svc.redis.start()  # back on the same port
            r = redis.Redis.from_url(url)
            await wait_for(lambda: len(redis_masklets(r, "cam")) == 10, timeout=60)
            # the publisher marks itself connected when Redis's reply is in, a moment after Redis has the entries
            await wait_for(lambda: gauge("vos_redis_connected") == 1 and gauge("vos_publish_buffered") == 0)
            assert [m.frame_index for m in redis_masklets(r, "cam")] == list(range(10))
            assert svc.manager.publisher.redis.stats().dropped == 0
            assert time.monotonic() - t0 < 120
    run(scenario())


def test_redis_outage_beyond_the_buffer_drops_oldest_and_counts_exactly():
    async def scenario():
        async with service(**{"redis.buffer_size": 6}) as (svc, client, _):
            url = svc.endpoints.redis_url
            await wait_for(lambda: svc.manager.publisher.redis.stats().connected)
            svc.redis.stop(kill=True)
            frames = [(i, FRAMES[i % len(FRAMES)], None) for i in range(10)]
            results = [e async for e in client.stream("cam", frames, mode="lossless", initial_prompts=[(1, CLICK)])
                       if isinstance(e, Result)]
            assert len(results) == 10
            # stream_closed is published just after the client sees the call end
            await wait_for(lambda: svc.manager.publisher.redis.stats().submitted == 13)
            stats = svc.manager.publisher.redis.stats()
            # 10 masklets + stream_opened + object_added + stream_closed events went through a 6-slot buffer
            assert stats.dropped == 13 - 6
            svc.redis.start()
            r = redis.Redis.from_url(url)
            await wait_for(lambda: svc.manager.publisher.redis.stats().buffered == 0, timeout=60)
            arrived = [m.frame_index for m in redis_masklets(r, "cam")] + \
                      [EventMessage.from_fields(f).type.value for _, f in r.xrange(EVENTS_KEY)]
            assert len(arrived) == 6 and arrived[:5] == [5, 6, 7, 8, 9]  # the newest survive, in order
            body = urllib.request.urlopen(f"http://127.0.0.1:{svc.endpoints.metrics_port}/metrics").read()
            assert b"vos_publish_dropped_total 7.0" in body
    run(scenario())


def test_embedded_redis_killed_mid_stream_is_restarted_and_loses_nothing():
    """Was: the embedded server kept nothing on disk, so a kill lost what it had accepted (26 of 150)."""
    async def scenario():
        async with service() as (svc, client, r):
            pid = svc.redis.pid

            async def frames():
                for i in range(40):
                    if i == 20:
                        os.kill(pid, signal.SIGKILL)  # a crash, not an intentional stop
                    yield (i, FRAMES[i % len(FRAMES)], None)
                    await asyncio.sleep(0.02)

            results = [e async for e in client.stream("cam", frames(), mode="lossless",
                                                       initial_prompts=[(1, CLICK)]) if isinstance(e, Result)]
            assert len(results) == 40
            await wait_for(lambda: svc.redis.restarts >= 1 and svc.redis.pid not in (None, pid), timeout=60)
            r = redis.Redis.from_url(svc.endpoints.redis_url)  # same URL: same port and password
            await wait_for(lambda: len({m.frame_index for m in redis_masklets(r, "cam")}) == 40, timeout=60)
            assert sorted({m.frame_index for m in redis_masklets(r, "cam")}) == list(range(40))
            assert svc.manager.publisher.redis.stats().dropped == 0
    run(scenario())


def test_the_console_and_grpc_admit_callers_through_one_authenticator():
    # One reading of the token file for both doors: they can never disagree about who is who.
    from vos_service.api.auth import hash_token, new_token
    from vos_service.api.server import _PARTS

    ident = {"name": "op", "roles": ["operator"], "token_sha256": hash_token(new_token())}

    async def scenario():
        async with service(**{"auth.identities": [ident]}) as (svc, _, _r):
            assert svc.console is not None and svc.console.auth.enabled
            assert svc.console.auth is _PARTS[svc.server].servicer.auth
    run(scenario())
