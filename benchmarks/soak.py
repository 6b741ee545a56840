"""Soak: N live camera streams for M minutes against `vos-service serve`; is the service's memory flat?

    python benchmarks/soak.py [--streams 8] [--minutes 20] [--fps 3] [--out benchmarks/results/soak.json]

Each stream sends 1280x720 JPEG frames of a real clip at --fps in live mode with one click,
gets a corrective click every 30 s, and is cancelled and re-opened (same id) every 5 minutes,
so stream lifecycle, corrections and the prompted bank all run. The service process's RSS is
sampled every 10 s; the slope is a least-squares fit over the last 80 % of the run (the first
20 % is warm-up: allocator pools, feature rings filling), reported in KiB per minute in total
and per stream. Not part of the test suite: it takes M minutes of both cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import cv2
import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._bench_util import machine_info  # noqa: E402
from tests.engine.factories import real_frames  # noqa: E402
from tests.fuzz.server import ServerProcess  # noqa: E402
from vos_service.api.gen.vos.v1 import vos_pb2 as pb  # noqa: E402
from vos_service.api.gen.vos.v1 import vos_pb2_grpc as pb_grpc  # noqa: E402

W, H = 1280, 720


def clip(name: str) -> list[bytes]:
    return [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
            for f in real_frames(name, count=60, stride=2)]


class Camera:
    def __init__(self, stub, sid: str, frames: list[bytes], fps: float, until: float) -> None:
        self.stub, self.sid, self.frames, self.fps, self.until = stub, sid, frames, fps, until
        self.sent = self.results = self.drops = self.corrections = self.reconnects = self.errors = 0
        self.index = 0

    async def run(self) -> None:
        while time.monotonic() < self.until:
            session_end = min(self.until, time.monotonic() + 300)
            try:
                await self._session(session_end)
            except grpc.aio.AioRpcError:
                self.errors += 1
                await asyncio.sleep(1)
            self.reconnects += 1

    async def _session(self, end: float) -> None:
        call = self.stub.StreamFrames()
        click = pb.Prompt(obj_id=1, points=[pb.Point(x=640, y=400, label=1)])
        await call.write(pb.StreamRequest(open=pb.StreamOpen(stream_id=self.sid, width=W, height=H,
                                                             initial_prompts=[click])))

        async def read() -> None:
            async for m in call:
                kind = m.WhichOneof("msg")
                self.results += kind == "result" and not m.result.revised
                self.drops += kind == "drop"

        reader = asyncio.create_task(read())
        next_fix = time.monotonic() + 30
        try:
            while time.monotonic() < end:
                data = self.frames[self.index % len(self.frames)]
                await call.write(pb.StreamRequest(frame=pb.Frame(index=self.index, data=data,
                                                                 capture_ts=time.time())))
                self.sent += 1
                self.index += 1
                if time.monotonic() > next_fix:
                    next_fix += 30
                    await self._correct()
                await asyncio.sleep(1 / self.fps)
        finally:
            call.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _correct(self) -> None:
        req = pb.AddPromptRequest(stream_id=self.sid, obj_id=1, points=[pb.Point(x=600, y=380, label=1),
                                                                         pb.Point(x=100, y=100, label=0)])
        try:
            await self.stub.AddPrompt(req)
            self.corrections += 1
        except grpc.aio.AioRpcError:
            self.errors += 1


def slope_kib_per_min(samples: list[tuple[float, float]]) -> float:
    t = np.array([s[0] for s in samples]) / 60
    rss = np.array([s[1] for s in samples]) * 1024
    return float(np.polyfit(t, rss, 1)[0]) if len(t) > 2 else float("nan")


async def soak(server: ServerProcess, args) -> dict:
    names = ["01_dog.mp4", "02_cups.mp4", "03_blocks.mp4", "04_coffee.mp4"]
    clips = [clip(n) for n in names]
    opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    start = time.monotonic()
    until = start + args.minutes * 60
    samples: list[tuple[float, float]] = []
    async with grpc.aio.insecure_channel(server.target, options=opts) as channel:
        stub = pb_grpc.VosServiceStub(channel)
        cams = [Camera(stub, f"soak-{i}", clips[i % len(clips)], args.fps, until) for i in range(args.streams)]
        tasks = [asyncio.create_task(c.run()) for c in cams]
        while time.monotonic() < until:
            samples.append((time.monotonic() - start, server.rss_mib()))
            await asyncio.sleep(10)
        await asyncio.gather(*tasks)
    steady = [s for s in samples if s[0] >= 0.2 * args.minutes * 60]
    slope = slope_kib_per_min(steady)
    return {"streams": args.streams, "minutes": args.minutes, "fps_per_stream": args.fps, "alive": server.alive,
            "rss_mib": {"first": samples[0][1], "at_20pct": steady[0][1], "last": samples[-1][1],
                        "max": max(s[1] for s in samples)},
            "rss_slope_kib_per_min": round(slope, 1),
            "rss_slope_kib_per_min_per_stream": round(slope / args.streams, 2),
            "frames": {"sent": sum(c.sent for c in cams), "results": sum(c.results for c in cams),
                       "dropped": sum(c.drops for c in cams)},
            "corrections": sum(c.corrections for c in cams), "reconnects": sum(c.reconnects for c in cams),
            "errors": sum(c.errors for c in cams),
            "samples": [(round(t, 1), round(r, 1)) for t, r in samples]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--fps", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/soak.json"))
    args = ap.parse_args()
    with ServerProcess(env={"VOS_STREAMS__IDLE_TIMEOUT_S": "60"}) as server:
        report = {"machine": machine_info(), **asyncio.run(soak(server, args))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("samples", "machine")}, indent=1))


if __name__ == "__main__":
    main()
