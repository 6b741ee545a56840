"""Memory of `vos-service serve` under a burst of 4K streams, and after they all close.

    python benchmarks/memory_load.py [--streams 16] [--frames 8] [--rounds 2] [--repo PATH] [--out FILE]

N lossless 3840x2160 JPEG streams send F frames each at once (one click each), then close; the
service's RSS is sampled every 50 ms. Reported: RSS idle (after one warm-up stream), peak, and
after each round (5 s after the last stream closed). --repo runs another checkout's service
(e.g. a `git worktree` of an older commit) with the same client, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path

import cv2
import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.engine.factories import real_frames  # noqa: E402
from tests.fuzz.server import ServerProcess  # noqa: E402
from vos_service.api.gen.vos.v1 import vos_pb2 as pb  # noqa: E402
from vos_service.api.gen.vos.v1 import vos_pb2_grpc as pb_grpc  # noqa: E402


def jpeg_frames(n: int, width: int, height: int) -> list[bytes]:
    frames = real_frames("01_dog.mp4", count=n, stride=5)
    return [cv2.imencode(".jpg", cv2.cvtColor(cv2.resize(f, (width, height)), cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for f in frames]


async def one_stream(stub, sid: str, frames: list[bytes], width: int, height: int) -> int:
    call = stub.StreamFrames()
    click = pb.Prompt(obj_id=1, points=[pb.Point(x=width / 2, y=height / 2, label=1)])
    await call.write(pb.StreamRequest(open=pb.StreamOpen(stream_id=sid, width=width, height=height,
                                                         mode=pb.STREAM_MODE_LOSSLESS, initial_prompts=[click])))
    for i, data in enumerate(frames):
        await call.write(pb.StreamRequest(frame=pb.Frame(index=i, data=data)))
    await call.done_writing()
    return len([m async for m in call if m.WhichOneof("msg") == "result"])


class Sampler(threading.Thread):
    def __init__(self, server: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.server, self.peak, self.halt = server, 0.0, threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.peak = max(self.peak, self.server.rss_mib())
            time.sleep(0.05)


async def measure(server: ServerProcess, args) -> dict:
    frames = jpeg_frames(args.frames, args.width, args.height)
    opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(server.target, options=opts) as channel:
        stub = pb_grpc.VosServiceStub(channel)
        await one_stream(stub, "warm", frames[:2], args.width, args.height)
        await asyncio.sleep(5)
        out = {"idle_mib": round(server.rss_mib(), 1), "rounds": []}
        for r in range(args.rounds):
            sampler = Sampler(server)
            sampler.start()
            got = await asyncio.gather(*(one_stream(stub, f"r{r}-s{i}", frames, args.width, args.height)
                                         for i in range(args.streams)))
            await asyncio.sleep(5)
            sampler.halt.set()
            sampler.join()
            out["rounds"].append({"results": sum(got), "peak_mib": round(sampler.peak, 1),
                                  "after_close_mib": round(server.rss_mib(), 1)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--width", type=int, default=3840)
    ap.add_argument("--height", type=int, default=2160)
    ap.add_argument("--repo", type=Path, help="run the service of this checkout instead")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    env = {"VOS_STREAMS__MAX_STREAMS": str(max(16, args.streams)), "VOS_STREAMS__IDLE_TIMEOUT_S": "300"}
    with ServerProcess(env=env, cwd=args.repo.resolve() if args.repo else None) as server:
        report = {"streams": args.streams, "frames": args.frames, "size": f"{args.width}x{args.height}",
                  "repo": str(args.repo or "."), "pid_cpus": os.cpu_count(), **asyncio.run(measure(server, args))}
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
