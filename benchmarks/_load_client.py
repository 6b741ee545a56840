"""The cameras of service_load.py: N concurrent streams from one client subprocess.

Run as `service_load.py --_client PARAMS` (not imported by the service side), so the
cameras' CPU is not on the service's GIL. Reads the JPEGs from a pickle, warms up, prints
WARM_DONE, waits for the server's GO on stdin, then streams and writes each stream's
send / receive times as JSON.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import time
from pathlib import Path

from _load_config import CLICK_XY


async def client_main(p: dict) -> None:
    import grpc

    from vos_service.client import Closed, Dropped, Opened, Result, VosClient
    from vos_service.engine.types import Prompt

    jpegs = pickle.loads(Path(p["frames_file"]).read_bytes())
    W, H = p["width"], p["height"]
    click = Prompt.from_points([list(CLICK_XY)], [1])
    opts = [("grpc.max_send_message_length", 32 << 20), ("grpc.max_receive_message_length", 32 << 20),
            ("grpc.use_local_subchannel_pool", 1)]  # a connection per camera, as separate devices have
    clients = [VosClient(p["target"], channel=grpc.aio.insecure_channel(p["target"], options=opts))
               for _ in range(p["n"])]

    async def open_call(c, sid, mode):
        call = await c.open_stream(sid, W, H, format="jpeg", mode=mode, initial_prompts=[(1, click)])
        ev = await call.read()
        if not isinstance(ev, Opened):
            raise RuntimeError(f"{sid}: expected Opened, got {ev!r}")
        return call

    async def drive(call, frames, send_at):
        """send_at(i) -> monotonic time to send frame i (None: at once). Returns the stream's record."""
        rec = {"id": call.stream_id, "sent": [], "written": [], "result": {}, "drop": {}, "closed": None,
               "rle_chars": [], "visible": []}

        async def sender():
            for i, data in enumerate(frames):
                at = send_at(i)
                if at is not None and at > time.monotonic():
                    await asyncio.sleep(at - time.monotonic())
                rec["sent"].append(time.monotonic())
                await call.send(i, data, capture_ts=i / p["fps"])
                rec["written"].append(time.monotonic())
            await call.done_writing()

        task = asyncio.create_task(sender())
        while (ev := await call.read()) is not None:
            t = time.monotonic()
            if isinstance(ev, Result) and not ev.revised:
                rec["result"][ev.frame_index] = t
                if ev.masklets:
                    rec["rle_chars"].append(len(ev.masklets[0].rle["counts"]))
                    rec["visible"].append(bool(ev.masklets[0].visible))
            elif isinstance(ev, Dropped):
                rec["drop"][ev.frame_index] = ev.reason
            elif isinstance(ev, Closed):
                rec["closed"] = ev.reason
        await task
        return rec

    try:
        await asyncio.gather(*(c.wait_ready() for c in clients))
        # warm-up (not timed): gRPC connections, the service's decode pool, Redis, torch shapes
        warm = [await open_call(c, f"warm-{k}", "lossless") for k, c in enumerate(clients)]
        await asyncio.gather(*(drive(call, jpegs[:p["warm_frames"]], lambda i: None) for call in warm))
        print("WARM_DONE", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the server's GO
        calls = [await open_call(c, f"cam-{k}", p["mode"]) for k, c in enumerate(clients)]
        t0 = time.monotonic() + 0.2
        frames = jpegs[:p["frames"]]
        n, fps = p["n"], p["fps"]

        def schedule(k):
            if p["mode"] != "live":
                return lambda i: None
            phase = k / (n * fps) if p["phase"] == "staggered" else 0.0
            return lambda i: t0 + phase + i / fps

        recs = await asyncio.gather(*(drive(call, frames, schedule(k)) for k, call in enumerate(calls)))
    finally:
        for c in clients:
            await c.close()
    Path(p["out_file"]).write_text(json.dumps({"streams": recs}))
