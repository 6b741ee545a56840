"""Unary RPCs over real gRPC: corrections, stream info, status codes, health, reflection, shutdown."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.api.harness import SMALL, SMALL_CLICK, collect, collect_status, read_until, run, serving
from vos_service.api.gen.vos.v1 import vos_pb2 as pb
from vos_service.api.server import graceful_stop
from vos_service.client import Closed, Opened, Result
from vos_service.engine.types import Prompt
from vos_service.runtime.types import StreamMode

CORRECTION = Prompt.from_points([[400, 150], [250, 250]], [1, 0])


async def code_of(awaitable) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value.code()


def test_correction_on_an_earlier_frame_revises_later_frames_and_reaches_the_stream():
    async def scenario():
        async with serving() as s:
            call = await s.client.open_stream("cam", 640, 360, mode="lossless", initial_prompts=[(1, SMALL_CLICK)])
            for i in range(6):
                await call.send(10 + i, SMALL[i])  # client numbering need not start at 0
            first = [e for e in await read_until(call, 6, Result) if isinstance(e, Result)]
            revised = await s.client.add_prompt("cam", 1, CORRECTION, frame_index=13)
            assert [r.frame_index for r in revised] == [13, 14, 15] and all(r.revised for r in revised)
            assert all(r.masklets[0].revision == 1 for r in revised) and revised[0].masklets[0].prompted
            assert not np.array_equal(revised[0].masklets[0].mask(), first[3].masklets[0].mask())
            # the streaming client gets the same revised results, marked revised
            pushed = await read_until(call, 3, Result)
            assert [(r.frame_index, r.revised) for r in pushed] == [(13, True), (14, True), (15, True)]
            for p, r in zip(pushed, revised):
                assert p.masklets[0].rle == r.masklets[0].rle and p.masklets[0].revision == 1
            # a new object on the latest frame (frame_index absent), then frames go on with both
            added = await s.client.add_prompt("cam", 2, points=[[100, 60]])
            assert [(r.frame_index, sorted(r.by_id())) for r in added] == [(15, [1, 2])]
            assert (await read_until(call, 1, Result))[0].revised
            await call.send(16, SMALL[6])
            nxt = await read_until(call, 1, Result)
            assert nxt[0].frame_index == 16 and not nxt[0].revised and sorted(nxt[0].by_id()) == [1, 2]
            assert nxt[0].by_id()[1].revision == 0  # a new frame starts at revision 0
            await s.client.remove_object("cam", 2)
            assert (await s.client.get_stream("cam")).objects == (1,)
            assert await code_of(s.client.remove_object("cam", 2)) == grpc.StatusCode.NOT_FOUND
            await call.done_writing()
            assert (await collect(call))[-1] == Closed("client_closed")
            assert s.metric("vos_prompts_total", kind="points") == 3  # initial + correction + new object

    run(scenario())


def test_get_stream_shows_counters():
    async def scenario():
        async with serving() as s:
            call = await s.client.open_stream("cam", 640, 360, mode="lossless", initial_prompts=[(1, SMALL_CLICK)])
            for i in range(6):
                await call.send(i, SMALL[i])
            await read_until(call, 6, Result)
            info = await s.client.get_stream("cam")
            assert (info.stream_id, info.mode, info.width, info.height) == ("cam", StreamMode.LOSSLESS, 640, 360)
            assert (info.received, info.processed, info.dropped, info.queue_depth) == (6, 6, 0, 0)
            assert info.objects == (1,) and info.last_frame_index == 5 and info.fps > 0
            assert await s.client.list_streams() == [info]
            await s.client.close_stream("cam")
            assert (await collect(call))[-1] == Closed("closed_by_request")
            assert await s.client.list_streams() == []
            get_stream = {"grpc_service": "vos.v1.VosService", "grpc_method": "GetStream"}
            ok = s.metric("vos_grpc_server_handled_total", **get_stream, grpc_code="OK")
            assert ok == 1 and s.metric("vos_grpc_server_handling_seconds_count", **get_stream) == 1

    run(scenario())


def test_malformed_and_impossible_requests_get_the_right_codes():
    async def open_code(s, **fields) -> grpc.StatusCode:
        call = s.client.stub.StreamFrames()
        msg = pb.StreamRequest(frame=pb.Frame(index=0, data=b"x")) if "frame_first" in fields else \
            pb.StreamRequest(open=pb.StreamOpen(**{"stream_id": "x", "width": 640, "height": 360, **fields}))
        await call.write(msg)
        return await code_of(call.read())

    async def scenario():
        async with serving(**{"streams.max_streams": 2}) as s:
            c = s.client
            invalid = grpc.StatusCode.INVALID_ARGUMENT
            assert await open_code(s, frame_first=True) == invalid
            assert await open_code(s, width=0) == invalid
            assert await open_code(s, stream_id="no spaces/slashes") == invalid
            assert await open_code(s, initial_prompts=[pb.Prompt(obj_id=1, points=[pb.Point(x=900, y=10, label=1)])]) \
                == invalid
            assert await open_code(s, width=8000, height=8000) == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert await code_of(c.add_prompt("nope", 1, points=[[1, 1]])) == grpc.StatusCode.NOT_FOUND
            assert await code_of(c.get_stream("nope")) == grpc.StatusCode.NOT_FOUND
            assert await code_of(c.close_stream("nope")) == grpc.StatusCode.NOT_FOUND

            call = await c.open_stream("cam", 640, 360, mode="lossless", initial_prompts=[(1, SMALL_CLICK)])
            assert await call.read() == Opened("cam")
            # before any frame: nothing to prompt on
            assert await code_of(c.add_prompt("cam", 1, points=[[5, 5]])) == invalid
            for i in range(10):
                await call.send(i, SMALL[i])
            await read_until(call, 10, Result)
            assert await code_of(c.remove_object("cam", 99)) == grpc.StatusCode.NOT_FOUND
            # the feature ring keeps the last 8 frames: frame 0 is gone
            assert await code_of(c.add_prompt("cam", 1, points=[[5, 5]], frame_index=0)) == \
                grpc.StatusCode.FAILED_PRECONDITION
            assert await code_of(c.add_prompt("cam", 1, points=[[5, 5]], frame_index=99)) == \
                grpc.StatusCode.FAILED_PRECONDITION
            assert await code_of(c.add_prompt("cam", 1)) == invalid  # no points, box or mask
            assert await code_of(c.add_prompt("cam", 1, box=(10, 10, 5, 5))) == invalid
            assert await code_of(c.add_prompt("cam", 1, mask=np.ones((10, 10), bool))) == invalid  # not 360x640
            assert await open_code(s, stream_id="cam") == grpc.StatusCode.ALREADY_EXISTS
            other = await c.open_stream("other", 640, 360)
            assert await other.read() == Opened("other")
            assert await open_code(s, stream_id="third") == grpc.StatusCode.RESOURCE_EXHAUSTED  # max_streams=2
            blob = np.zeros((360, 640), bool)
            blob[100:250, 200:450] = True
            ok = await c.add_prompt("cam", 1, mask=blob)  # a mask prompt goes through as RLE
            assert ok[0].frame_index == 9 and ok[0].masklets[0].prompted
            assert s.metric("vos_grpc_server_handled_total", grpc_service="vos.v1.VosService",
                            grpc_method="AddPrompt", grpc_code="FAILED_PRECONDITION") == 2
            call.cancel()
            other.cancel()

    run(scenario())


def test_health_reflection_and_graceful_shutdown():
    async def scenario():
        # A slow worker (see the live-mode test) keeps frames queued while the service drains.
        async with serving(**{"scheduler.max_wait_ms": 300.0}) as s:
            channel = s.client.channel
            health = health_pb2_grpc.HealthStub(channel)
            serving_ = health_pb2.HealthCheckResponse.SERVING
            assert (await health.Check(health_pb2.HealthCheckRequest())).status == serving_
            assert (await health.Check(health_pb2.HealthCheckRequest(service="vos.v1.VosService"))).status == serving_

            refl = reflection_pb2_grpc.ServerReflectionStub(channel)
            responses = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            names = {svc.name async for r in responses for svc in r.list_services_response.service}
            assert {"vos.v1.VosService", "grpc.health.v1.Health"} <= names

            idle = await s.client.open_stream("idle", 640, 360)
            call = await s.client.open_stream("cam", 640, 360, mode="lossless")
            for i in range(3):
                await call.send(i, SMALL[i])
            for _ in range(100):  # until the three frames are queued or done
                if (await s.client.get_stream("cam")).received == 3:
                    break
                await asyncio.sleep(0.02)
            stopping = asyncio.create_task(graceful_stop(s.server, s.manager, drain=10.0, grace=1.0))
            for _ in range(100):
                status = (await health.Check(health_pb2.HealthCheckRequest())).status
                if status != serving_:
                    break
                await asyncio.sleep(0.02)
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            late = await s.client.open_stream("late", 640, 360)
            assert await code_of(late.read()) == grpc.StatusCode.UNAVAILABLE
            # The queued frames finish, then the stream closes and the call ends UNAVAILABLE (was: OK),
            # so a client knows to reconnect.
            events, code = await collect_status(call)
            assert [e.frame_index for e in events if isinstance(e, Result)] == [0, 1, 2]
            assert events[-1] == Closed("shutdown") and code == grpc.StatusCode.UNAVAILABLE
            assert await collect_status(idle) == ([Opened("idle"), Closed("shutdown")], grpc.StatusCode.UNAVAILABLE)
            await stopping
            assert s.metric("vos_grpc_server_handled_total", grpc_service="vos.v1.VosService",
                            grpc_method="StreamFrames", grpc_code="UNAVAILABLE") == 3

    run(scenario())
