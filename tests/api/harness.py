"""A real VosService on loopback for api tests: real gRPC, a real StreamManager on the nano model.

Tests are plain functions that run one scenario with `run(coro)`: server and
client share that event loop (the model runs on the manager's worker
thread), and every scenario is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import AsyncIterator

import av
import cv2
import grpc
import numpy as np

from tests.engine.factories import make_nano_model, real_frames
from tests.runtime.factories import make_manager
from vos_service.api.server import build_server, graceful_stop, start_server
from vos_service.client import VosClient
from vos_service.engine.types import Prompt
from vos_service.runtime.manager import StreamManager

FRAMES = real_frames("01_dog.mp4", count=12, stride=2)  # 12 x (720, 1280, 3) uint8 RGB
SMALL = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in FRAMES]  # faster codecs
CLICK = Prompt.from_points([[640, 360]], [1])  # the dog, on the 1280x720 frames
SMALL_CLICK = Prompt.from_points([[320, 180]], [1])  # the same point on the 640x360 frames

SCENARIO_TIMEOUT_S = 120.0  # generous: 2 shared cores; a hang fails instead of blocking the suite


@lru_cache(maxsize=1)
def model():
    # The nano architecture with seeded random weights, scaled so masks depend on the
    # prompt and the frame (plain random weights give near-constant masks).
    return make_nano_model()


@dataclass
class Service:
    client: VosClient
    manager: StreamManager
    server: grpc.aio.Server
    port: int

    def metric(self, name: str, **labels: str) -> float:
        return self.manager.metrics.registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def serving(credentials=None, **overrides) -> AsyncIterator[Service]:
    """overrides: dotted settings, e.g. {'streams.queue_size': 1}; credentials: the client's."""
    manager = make_manager(model=model(), **{"server.port": 0, **overrides})
    server, port = build_server(manager, manager.settings, manager.metrics)
    await start_server(server)
    client = VosClient(f"127.0.0.1:{port}", credentials=credentials)
    try:
        await client.wait_ready()
        yield Service(client, manager, server, port)
    finally:
        await client.close()
        await graceful_stop(server, manager, drain=1.0, grace=0.5)  # idempotent: a test may stop it first


def run(coro, timeout: float = SCENARIO_TIMEOUT_S):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def collect(events: AsyncIterator) -> list:
    return [e async for e in events]


async def status_of(awaitable) -> grpc.StatusCode:
    """The status a call ends with (OK when it returns)."""
    try:
        await awaitable
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def collect_status(call) -> tuple[list, grpc.StatusCode]:
    """Every event of a StreamCall, and the status code the call ended with."""
    events = []
    try:
        while (e := await call.read()) is not None:
            events.append(e)
    except grpc.aio.AioRpcError as err:
        return events, err.code()
    return events, grpc.StatusCode.OK


async def read_until(call, n: int, kind) -> list:
    """The next `n` events of type `kind` from a StreamCall (others are returned too, in order)."""
    got, seen = [], 0
    while seen < n:
        e = await call.read()
        assert e is not None, f"the call ended after {got}"
        got.append(e)
        seen += isinstance(e, kind)
    return got


def h264_access_units(frames: list[np.ndarray], **options: str) -> list[bytes]:
    """libx264 Annex-B access units, decode order (B-frames by default: the decoder must buffer)."""
    h, w = frames[0].shape[:2]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 30), Fraction(30)
    enc.options = {"preset": "medium", "bf": "2", "crf": "18", **options}
    aus = []
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
        vf.pts = i
        aus += [bytes(p) for p in enc.encode(vf)]
    return aus + [bytes(p) for p in enc.encode(None)]
