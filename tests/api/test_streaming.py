"""StreamFrames over real gRPC: results, modes, formats, bad frames, disconnects."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np

from tests.api.harness import (
    CLICK,
    FRAMES,
    SMALL,
    SMALL_CLICK,
    collect,
    h264_access_units,
    model,
    read_until,
    run,
    serving,
)
from vos_service.api.gen.vos.v1 import vos_pb2 as pb
from vos_service.client import Closed, Dropped, Opened, Result, SyncVosClient, encode_frame
from vos_service.config import StreamSettings
from vos_service.engine.tracker import StreamTracker, TrackerConfig
from vos_service.engine.types import Prompt
from vos_service.io.decode import FrameDecoder, FrameFormat
from vos_service.io.rle import mask_bbox


def results(events) -> list[Result]:
    return [e for e in events if isinstance(e, Result)]


def test_lossless_stream_every_result_in_order_and_masks_match_the_engine():
    async def scenario():
        async with serving() as s:
            frames = [(i, f, i / 30) for i, f in enumerate(FRAMES)]
            events = await collect(s.client.stream("cam", frames, mode="lossless", initial_prompts=[(1, CLICK)]))
            assert events[0] == Opened("cam") and events[-1] == Closed("client_closed")
            got = results(events)
            assert len(events) == len(FRAMES) + 2  # nothing dropped, nothing revised
            assert [r.frame_index for r in got] == list(range(12))
            assert [r.capture_ts for r in got] == [i / 30 for i in range(12)]
            assert all(r.stream_id == "cam" and not r.revised and list(r.by_id()) == [1] for r in got)
            assert got[0].masklets[0].prompted and not any(r.masklets[0].prompted for r in got[1:])
            assert s.metric("vos_frames_received_total") == 12 and s.metric("vos_frames_processed_total") == 12
            assert s.metric("vos_stage_seconds_count", stage="frame_decode") == 12
            assert await s.client.list_streams() == []  # the half-closed stream was freed
            return got

    got = run(scenario())
    # The same frames, JPEG-decoded as the server does, tracked in-process: identical masks.
    limits = StreamSettings()
    tracker = StreamTracker(model(), TrackerConfig(feature_ring=limits.feature_ring, max_objects=limits.max_objects,
                                                   memory=limits.memory_config()))
    for i, f in enumerate(FRAMES):
        rgb = FrameDecoder("jpeg", 1280, 720).decode(encode_frame(f, FrameFormat.JPEG))
        expected = tracker.track(rgb)
        if i == 0:  # the initial prompt lands on the first frame, after it was tracked
            expected = tracker.add_prompt(1, CLICK)[0]
        m = got[i].masklets[0]
        mask = m.mask()
        assert mask.shape == (720, 1280) and mask.dtype == bool
        np.testing.assert_array_equal(mask, expected.objects[0].mask)
        assert m.box == mask_bbox(mask) and m.revision == 0


def test_two_streams_at_once():
    async def one(s, sid, click, n=8):
        frames = [(i, SMALL[i]) for i in range(n)]
        return await collect(s.client.stream(sid, frames, mode="lossless", initial_prompts=[(7, click)]))

    async def scenario():
        async with serving(**{"scheduler.max_wait_ms": 20.0}) as s:
            other_click = Prompt.from_points([[100, 60]], [1])
            a, b = await asyncio.gather(one(s, "left", SMALL_CLICK), one(s, "right", other_click))
            for sid, events in (("left", a), ("right", b)):
                got = results(events)
                assert [r.frame_index for r in got] == list(range(8)) and all(r.stream_id == sid for r in got)
                assert all(r.masklets[0].obj_id == 7 and r.masklets[0].mask().shape == (360, 640) for r in got)
                assert events[-1] == Closed("client_closed")
            # different clicks on the same frames: different masks
            assert not np.array_equal(results(a)[0].masklets[0].mask(), results(b)[0].masklets[0].mask())
            assert s.metric("vos_frames_processed_total") == 16

    run(scenario())


def test_live_mode_under_overload_drops_oldest_and_counts():
    async def scenario():
        # A second, idle stream makes the scheduler wait max_wait_ms for it before every
        # batch: the worker then takes >= 0.25 s a frame, far slower than the client sends.
        async with serving(**{"streams.queue_size": 1, "scheduler.max_wait_ms": 250.0}) as s:
            idle = await s.client.open_stream("idle", 640, 360)
            call = await s.client.open_stream("cam", 640, 360, format="rgb", mode="live",
                                              initial_prompts=[(1, SMALL_CLICK)])
            n = 16
            for i in range(n):
                await call.send(i, SMALL[i % len(SMALL)])
            events = await read_until(call, n, (Result, Dropped))
            done = [e.frame_index for e in events if isinstance(e, Result)]
            drops = [e for e in events if isinstance(e, Dropped)]
            assert isinstance(events[0], Opened) and drops and all(d.reason == "queue_full" for d in drops)
            assert sorted(done + [d.frame_index for d in drops]) == list(range(n))
            assert done == sorted(done) and done[-1] == n - 1  # the newest frame is never dropped
            info = await s.client.get_stream("cam")
            assert (info.received, info.processed, info.dropped) == (n, len(done), len(drops))
            assert s.metric("vos_frames_dropped_total", reason="queue_full") == len(drops)
            assert s.metric("vos_frames_received_total") == n
            await call.done_writing()
            assert await collect(call) == [Closed("client_closed")]
            idle.cancel()

    run(scenario())


def test_lossless_drops_nothing_with_queue_size_1_while_the_client_pushes_fast():
    async def scenario():
        async with serving(**{"streams.queue_size": 1}) as s:
            n = 16
            frames = [(i, SMALL[i % len(SMALL)]) for i in range(n)]  # raw RGB: the client is never the bottleneck
            events = await collect(s.client.stream("file", frames, format="rgb", mode="lossless",
                                                   initial_prompts=[(1, SMALL_CLICK)]))
            assert [r.frame_index for r in results(events)] == list(range(n))
            assert not [e for e in events if isinstance(e, Dropped)] and events[-1] == Closed("client_closed")
            assert s.metric("vos_frames_dropped_total", reason="queue_full") == 0
            assert s.metric("vos_frames_processed_total") == n

    run(scenario())


def test_bad_frames_get_invalid_drop_notices_and_the_stream_goes_on():
    async def scenario():
        async with serving(**{"streams.max_frame_bytes": 150_000}) as s:
            call = await s.client.open_stream("cam", 640, 360, mode="lossless", initial_prompts=[(1, SMALL_CLICK)])
            await call.send(0, SMALL[0])
            await call.send(1, b"\xff\xd8\xff garbage, not a JPEG")
            await call.send(2, SMALL[2], prompts=[(2, Prompt.from_points([[900, 100]], [1]))])  # outside 640x360
            await call.send(2, SMALL[2])
            await call.send(2, SMALL[3])  # not above the last accepted index
            await call.send(3, cv2.resize(SMALL[3], (320, 180)))  # not the announced size
            await call.send(4, b"\xff\xd8\xff" + bytes(200_000))  # over max_frame_bytes
            await call._call.write(pb.StreamRequest(open=pb.StreamOpen(stream_id="again")))  # a second open
            await call.send(5, SMALL[5])
            await call.done_writing()
            events = await collect(call)
            assert isinstance(events[0], Opened) and events[-1] == Closed("client_closed")
            assert [r.frame_index for r in results(events)] == [0, 2, 5]
            drops = [e for e in events if isinstance(e, Dropped)]
            assert [d.frame_index for d in drops] == [1, 2, 2, 3, 4, -1]
            assert all(d.reason.startswith("invalid: ") for d in drops)
            assert "corrupt JPEG" in drops[0].reason and "inside the 640x360 frame" in drops[1].reason
            assert "not above the previous 2" in drops[2].reason and "320x180" in drops[3].reason
            assert "max_frame_bytes" in drops[4].reason and "only the first message" in drops[5].reason
            assert s.metric("vos_frames_dropped_total", reason="invalid") == 6
            assert s.metric("vos_frames_received_total") == 8

    run(scenario())


def test_a_client_that_disconnects_frees_its_stream():
    async def scenario():
        async with serving() as s:
            call = await s.client.open_stream("gone", 640, 360, mode="lossless", initial_prompts=[(1, SMALL_CLICK)])
            for i in range(4):
                await call.send(i, SMALL[i])
            await read_until(call, 1, Result)
            assert [i.stream_id for i in await s.client.list_streams()] == ["gone"]
            call.cancel()
            for _ in range(200):  # up to 20 s
                if not await s.client.list_streams():
                    break
                await asyncio.sleep(0.1)
            assert await s.client.list_streams() == [] and s.manager.snapshot() == []
            method = {"grpc_service": "vos.v1.VosService", "grpc_method": "StreamFrames"}
            for _ in range(50):
                if s.metric("vos_grpc_server_handled_total", **method, grpc_code="CANCELLED") == 1:
                    break
                await asyncio.sleep(0.1)
            assert s.metric("vos_grpc_server_handled_total", **method, grpc_code="CANCELLED") == 1
            # the id is free again
            again = await s.client.open_stream("gone", 640, 360)
            assert await again.read() == Opened("gone")
            again.cancel()

    run(scenario())


def test_h264_annex_b_end_to_end():
    async def scenario():
        aus = h264_access_units(SMALL[:8])  # B-frames: the server's decoder holds frames back
        async with serving() as s:
            events = await collect(s.client.stream("h264", [(i, au) for i, au in enumerate(aus)], width=640,
                                                   height=360, format="h264", mode="lossless",
                                                   initial_prompts=[(1, SMALL_CLICK)]))
            got = results(events)
            assert [r.frame_index for r in got] == list(range(8)) and events[-1] == Closed("client_closed")
            assert all(r.masklets[0].mask().shape == (360, 640) for r in got)
            assert not [e for e in events if isinstance(e, Dropped)]

    run(scenario())


def test_sync_client_streams_from_a_plain_thread():
    def use(port):
        with SyncVosClient(f"127.0.0.1:{port}", timeout=60) as c:
            events = list(c.stream("sync", ((i, SMALL[i]) for i in range(4)), mode="lossless",
                                   initial_prompts=[(1, SMALL_CLICK)]))
            return events, c.list_streams()

    async def scenario():
        async with serving() as s:
            events, streams = await asyncio.to_thread(use, s.port)
            assert [r.frame_index for r in results(events)] == [0, 1, 2, 3] and streams == []

    run(scenario())
