"""The crashes and stalls of the hostile-input issue, one by one, over real gRPC (each failed before)."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from tests.api.harness import SMALL, collect_status, read_until, run, serving, status_of
from vos_service.api.gen.vos.v1 import vos_pb2 as pb
from vos_service.client import Dropped, Opened, Result

H, W = 360, 640
CRASH_RLES = [pb.Rle(size=[2 ** 31 - 1, 2 ** 31 - 1], counts="1"),  # segfaulted pycocotools
              pb.Rle(size=[2 ** 31 - 1, 2 ** 31 - 1], counts="0"),  # MemoryError -> INTERNAL
              pb.Rle(size=[16384, 16384], counts="0"),  # 8 s on the event loop, +0.5 GB
              pb.Rle(size=[H, W], counts="9:")]  # the frame's size, runs past h*w: a heap overflow


def mask_prompt(rle: pb.Rle, obj_id: int = 1) -> pb.Prompt:
    return pb.Prompt(obj_id=obj_id, mask=rle)


def clicks(n: int, obj_id: int = 1) -> pb.Prompt:
    return pb.Prompt(obj_id=obj_id, points=[pb.Point(x=float(i % W), y=100.0, label=1) for i in range(n)])


@pytest.mark.parametrize("rle", CRASH_RLES, ids=["2^31-counts1", "2^31-counts0", "16384", "overflow"])
def test_hostile_mask_rle_is_refused_in_open_addprompt_and_inline(rle):
    async def scenario():
        async with serving() as s:
            bad_open = await s.client.open_stream("bad", W, H, initial_prompts=[mask_prompt(rle)])
            assert (await collect_status(bad_open))[1] == grpc.StatusCode.INVALID_ARGUMENT

            call = await s.client.open_stream("cam", W, H, mode="lossless")
            await call.send(0, SMALL[0])
            await read_until(call, 1, Result)
            req = pb.AddPromptRequest(stream_id="cam", obj_id=1, mask=rle)
            assert await status_of(s.client.stub.AddPrompt(req)) == grpc.StatusCode.INVALID_ARGUMENT

            await call.send(1, SMALL[1], prompts=[mask_prompt(rle)])  # inline: one frame dropped ...
            await call.send(2, SMALL[2])  # ... and the stream goes on
            events = await read_until(call, 1, Result)
            drops = [e for e in events if isinstance(e, Dropped)]
            assert [d.frame_index for d in drops] == [1] and drops[0].reason.startswith("invalid: mask")
            assert events[-1].frame_index == 2
            await call.done_writing()
            assert (await collect_status(call))[1] == grpc.StatusCode.OK

    run(scenario())


def test_point_lists_are_capped():
    async def scenario():
        async with serving(**{"streams.max_points": 64}) as s:
            call = await s.client.open_stream("cam", W, H, mode="lossless")
            await call.send(0, SMALL[0])
            await read_until(call, 1, Result)
            req = pb.AddPromptRequest(stream_id="cam", obj_id=1, points=clicks(16000).points)  # 200 KB
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await s.client.stub.AddPrompt(req)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_points=64" in err.value.details()
            await call.send(1, SMALL[1], prompts=[clicks(65)])
            await call.send(2, SMALL[2], prompts=[clicks(64)])
            events = await read_until(call, 1, Result)
            assert [e.frame_index for e in events if isinstance(e, Dropped)] == [1]
            assert events[-1].frame_index == 2 and [m.obj_id for m in events[-1].masklets] == [1]
            call.cancel()

    run(scenario())


def test_inline_prompts_over_max_objects_apply_nothing():
    """17 clicks with max_objects 16 (was: objects 2-16 added, the frame lost); also 10 + 7 new ones."""
    async def scenario():
        async with serving(**{"streams.max_objects": 16}) as s:
            call = await s.client.open_stream("cam", W, H, mode="lossless")
            await call.send(0, SMALL[0], prompts=[clicks(1, obj_id=i) for i in range(1, 18)])
            await call.send(1, SMALL[1], prompts=[clicks(1, obj_id=i) for i in range(1, 11)])
            await call.send(2, SMALL[2], prompts=[clicks(1, obj_id=i) for i in range(11, 18)])
            await call.send(3, SMALL[3])
            events = await read_until(call, 2, Result)
            drops = {e.frame_index: e.reason for e in events if isinstance(e, Dropped)}
            assert set(drops) == {0, 2}
            assert drops[0].startswith("invalid: 17 prompts") and drops[2].startswith("refused: 7 new objects")
            done = [e for e in events if isinstance(e, Result)]
            assert [r.frame_index for r in done] == [1, 3]
            assert [len(r.masklets) for r in done] == [10, 10]
            assert (await s.client.get_stream("cam")).objects == tuple(range(1, 11))
            call.cancel()

    run(scenario())


def test_a_reconnect_right_after_a_cancel_gets_in():
    """Was: ALREADY_EXISTS for up to ~2.6 s after the cancel."""
    async def scenario():
        async with serving() as s:
            for i in range(20):
                call = await s.client.open_stream("cam", W, H)
                assert isinstance(await call.read(), Opened), f"reconnect {i}"
                await call.send(0, SMALL[i % len(SMALL)])
                call.cancel()
            second = await s.client.open_stream("cam", W, H)  # while it is open, a second camera is refused
            assert isinstance(await second.read(), Opened)
            dup = await s.client.open_stream("cam", W, H)
            assert (await collect_status(dup))[1] == grpc.StatusCode.ALREADY_EXISTS
            second.cancel()

    run(scenario())


def test_unary_calls_are_answered_while_a_big_mask_decodes():
    """Mask prompts decode on the pool: unary calls are still answered while 4 max-size masks are parsed."""
    async def scenario():
        async with serving(**{"streams.max_mask_rle_bytes": 8 << 20}) as s:
            call = await s.client.open_stream("cam", 3840, 2160, mode="lossless", format="png")
            await call.send(0, np.zeros((2160, 3840, 3), np.uint8))
            await read_until(call, 1, Result)
            # A 4K checkerboard row pattern: 8 M runs, the most expensive mask of its size to parse.
            counts = pb.Rle(size=[2160, 3840], counts="0" + "1" * (2160 * 3840 - 1) + "0")
            bad = [asyncio.ensure_future(s.client.stub.AddPrompt(
                pb.AddPromptRequest(stream_id="cam", obj_id=1, mask=counts))) for _ in range(4)]
            infos = [await s.client.get_stream("cam") for _ in range(20)]
            assert all(i.stream_id == "cam" for i in infos)
            for b in bad:
                assert await status_of(b) == grpc.StatusCode.INVALID_ARGUMENT
            call.cancel()

    run(scenario())
