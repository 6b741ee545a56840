#!/usr/bin/env python
"""The whole service under load: N concurrent camera streams of a real clip over gRPC.

The real Service (vos_service.service.Service: gRPC server on loopback, runtime worker,
an embedded real redis-server, its own Prometheus registry) runs in this process with
its default model, the shipped trained nano (no model settings). The cameras run in a client subprocess (VosClient, one gRPC
channel per stream), so their CPU is not on the service's GIL. Every stream sends the
same 720p clip as JPEGs encoded once before timing, with one click on frame 0:
  * live at a fixed rate per stream (phases staggered across streams), and
  * lossless as fast as gRPC flow control lets it,
for N = 1, 2, 4, 8 streams, encoder batching on (max_batch 8, max_wait 3 ms) and off.
Measured per configuration: frames served per second, end-to-end latency p50/p99 at the
client (send -> result received), drops, and the service's own overhead per frame:
end-to-end latency minus the engine compute of that frame minus the time it waited while
the worker computed other frames (definition and breakdown: benchmarks/README.md).
The model is built and warmed once, in a short-lived thread, as the service builds its own
(vos_service.service.off_main_thread): torch never runs on the main thread.
Modules: _load_client (the cameras), _load_service (probe, one configuration), _load_report
(analysis, tables), _load_config (shared constants), _bench_util (machine info, CPU accounting).
Usage: python benchmarks/service_load.py [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VIDEOS = REPO.parent / "shared/data/videos"
sys.path.insert(0, str(HERE))  # benchmarks/ is not a package: its helper modules are imported by name

# Light imports only: the camera client subprocess (`--_client`) runs this script too and must
# not load torch; _bench_util and _load_service (which import it) are imported in main().
from _load_client import client_main  # noqa: E402
from _load_config import CLICK_XY  # noqa: E402
from _load_report import DEFINITIONS, key, print_report, rounded  # noqa: E402

FULL = dict(frames=90, stride=3, fps=10.0, warm_frames=5, streams=(1, 2, 4, 8), max_batch=8, max_wait_ms=3.0,
            idle_wait=60.0, idle_budget=300.0, config_timeout=300.0)
QUICK = dict(FULL, frames=15, warm_frames=3, idle_wait=5.0, idle_budget=30.0, config_timeout=120.0)
MODES = ("live", "lossless")
JPEG_QUALITY = 90


def build_model_and_warm(settings, rgb, max_batch: int):
    """The settings' model (the shipped nano by default), plus an untimed torch warm-up: every
    encoder batch size the scheduler can form and a few tracker steps.

    Both run in a short-lived thread, as vos_service.service.Service.start builds the
    service's model: torch keeps an OpenMP thread team per thread that ever ran it, and a team
    left on the main thread competed with the runtime worker's (measured before the service
    fix: 55.9 vs 30.2 ms per nano frame engine step). The thread exits, and its team with it.
    """
    from vos_service.service import off_main_thread

    return off_main_thread(lambda: _build_and_warm(settings, rgb, max_batch), name="bench-model-build")


def _build_and_warm(settings, rgb, max_batch: int):
    from vos_service.engine.encoder import ImageEncoder
    from vos_service.engine.model import build_model
    from vos_service.engine.tracker import StreamTracker
    from vos_service.engine.types import Prompt
    from vos_service.weights.selection import spec_from_settings

    model = build_model(spec_from_settings(settings.model))
    enc = ImageEncoder(model)
    for k in range(1, max_batch + 1):
        enc.encode(rgb[:1] * k)
    tr = StreamTracker(model)
    tr.track(rgb[0])
    tr.add_prompt(1, Prompt.from_points([list(CLICK_XY)], [1]))
    for fr in rgb[1:4]:
        tr.track(fr)
    return model


def engine_rate(model, frames) -> dict:
    """The bare engine on the same decoded frames: StreamTracker.track() per frame (preprocess,
    encode, step, masks at 720p), one click on frame 0 - what one lossless stream could reach
    without the service. In a short-lived thread, like the model build (see above)."""
    from vos_service.service import off_main_thread

    def run():
        from vos_service.engine.tracker import StreamTracker
        from vos_service.engine.types import Prompt

        tr = StreamTracker(model)
        tr.track(frames[0])
        tr.add_prompt(1, Prompt.from_points([list(CLICK_XY)], [1]))
        times = []
        for fr in frames[1:]:
            t0 = time.perf_counter()
            tr.track(fr)
            times.append(time.perf_counter() - t0)
        med = float(np.median(times))
        return {"frames": len(times), "per_frame_ms_p50": med * 1e3, "track_fps": 1.0 / med}

    return off_main_thread(run, name="bench-engine-rate")


def throughput_targets(res: dict, engine_fps: float) -> dict:
    """Issue 12: one lossless stream >= 0.9x the bare engine's track() rate; with 8 streams,
    encoder batching >= 1.5x the unbatched throughput."""
    runs, out = res["runs"], {}
    one = runs.get(key("lossless", 1, True, 0))
    if one and one["served_fps"]:
        v = one["served_fps"] / engine_fps
        out["lossless_1stream_fps_vs_engine_track>=0.9"] = {"value": v, "met": v >= 0.9,
                                                             "uncontended": one["uncontended"]}
    on, off = runs.get(key("lossless", 8, True, 0)), runs.get(key("lossless", 8, False, 0))
    if on and off and on["served_fps"] and off["served_fps"]:
        v = on["served_fps"] / off["served_fps"]
        out["lossless_8streams_batching_speedup>=1.5"] = {
            "value": v, "met": v >= 1.5, "uncontended": on["uncontended"] and off["uncontended"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 15 frames per stream (~1.5 min idle)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/service_load.json")
    ap.add_argument("--video", default="01_dog.mp4", help="clip in ../shared/data/videos")
    ap.add_argument("--frames", type=int, help="frames per stream (default: full 90, quick 15)")
    ap.add_argument("--fps", type=float, help="live rate per stream (default 10)")
    ap.add_argument("--streams", type=lambda s: tuple(int(x) for x in s.split(",")), help="e.g. 1,2,4,8")
    ap.add_argument("--modes", default=",".join(MODES), help="live,lossless")
    ap.add_argument("--max-wait-ms", type=float, help="batching max_wait (default 3)")
    ap.add_argument("--phase", choices=["staggered", "aligned"], default="staggered",
                    help="live: stream k sends at k/(N*fps) into each period (staggered) or all at once")
    ap.add_argument("--idle-wait", type=float, help="before each run wait up to this long for other jobs to "
                                                    "leave the CPUs idle (default: quick 5 s, full 60 s)")
    ap.add_argument("--idle-budget", type=float, help="total seconds the idle waits may take (quick 30, full 300)")
    ap.add_argument("--device", default="cpu", help="model.device: cpu | cuda[:N]")
    ap.add_argument("--_client", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._client:
        asyncio.run(client_main(json.loads(Path(args._client).read_text())))
        return

    import signal

    import av
    import cv2
    import grpc
    import torch

    import _bench_util as U
    from _load_service import run_config
    from vos_service.config import Settings

    # SIGTERM -> SystemExit: the finally blocks stop the Service (and its redis-server) and children
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cfg = dict(QUICK if args.quick else FULL)
    for k in ("frames", "fps", "streams", "idle_wait", "idle_budget"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    if args.max_wait_ms is not None:
        cfg["max_wait_ms"] = args.max_wait_ms
    modes = [m for m in args.modes.split(",") if m]
    t_start = time.time()

    # frames: every `stride`-th frame of the clip (10 fps of a 30 fps clip: real motion per step)
    rgb = []
    with av.open(str(VIDEOS / args.video)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i % cfg["stride"] == 0:
                rgb.append(fr.to_ndarray(format="rgb24"))
            if len(rgb) == max(cfg["frames"], cfg["warm_frames"]):
                break
    if len(rgb) < cfg["frames"]:
        raise SystemExit(f"{args.video} has fewer than {cfg['frames']} frames at stride {cfg['stride']}")
    H, W = rgb[0].shape[:2]
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1]
             .tobytes() for f in rgb]

    base = Settings().with_overrides({
        "server.port": 0, "server.metrics_port": 0, "console.port": 0, "model.device": args.device,
        "streams.max_streams": max(16, max(cfg["streams"])),
        "scheduler.max_batch": cfg["max_batch"], "scheduler.max_wait_ms": cfg["max_wait_ms"]})
    model = build_model_and_warm(base, rgb, cfg["max_batch"])  # built once, shared by every Service
    # the frames the service will decode, decoded the same way (its own JPEG decoder)
    from vos_service.io.decode import FrameDecoder
    served_rgb = [FrameDecoder("jpeg", W, H).decode(j) for j in jpegs[:cfg["frames"]]]
    engine_before = engine_rate(model, served_rgb)

    res = {"mode": "quick" if args.quick else "full",
           "config": {**cfg, "streams": list(cfg["streams"]), "modes": modes, "video": args.video,
                      "frame_size": [W, H], "jpeg_quality": JPEG_QUALITY,
                      "jpeg_kib_mean": float(np.mean([len(j) for j in jpegs[:cfg["frames"]]]) / 1024),
                      "click": list(CLICK_XY), "live_phase": args.phase,
                      "model": "the default: shipped trained nano (vos_service/weights/nano.pt)",
                      "model_image_size": model.image_size,
                      "model_build": "built and warmed in a short-lived thread: torch never ran on the main "
                                     "thread (as vos_service.service.off_main_thread)",
                      "settings": {"scheduler.max_batch": cfg["max_batch"],
                                   "scheduler.max_wait_ms": cfg["max_wait_ms"],
                                   "streams.queue_size": base.streams.queue_size,
                                   "redis": "embedded redis-server (redis.url unset)",
                                   "server.per_stream_metrics": base.server.per_stream_metrics}},
           "definitions": DEFINITIONS,
           "machine": {**U.machine_info(), "grpcio": grpc.__version__, "torch_threads": torch.get_num_threads()},
           "runs": {}}
    print(f"service_load: {res['mode']}, {cfg['frames']} frames/stream of {args.video} "
          f"({W}x{H} JPEG q{JPEG_QUALITY}, {res['config']['jpeg_kib_mean']:.0f} KiB), streams "
          f"{list(cfg['streams'])}, modes {modes}; loadavg {U.loadavg()}", flush=True)
    budget = cfg["idle_budget"]
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:  # the clients' frames
        pickle.dump(jpegs, f)
        files = {"jpegs": f.name, "width": W, "height": H}
    try:
        for mode in modes:
            for n in cfg["streams"]:
                for batching in (True, False):  # alternated, so load drift hits both alike
                    k = key(mode, n, batching, cfg["fps"])
                    print(f"... {k}", flush=True)
                    threads = threading.active_count()
                    r = asyncio.run(run_config(model, base, mode, n, batching, cfg, files, args.phase,
                                               min(cfg["idle_wait"], max(0.0, budget))))
                    r["python_threads_at_start"] = threads
                    budget -= r["idle_wait_s"]
                    res["runs"][k] = r
                    L = r["latency_ms"]
                    print(f"    served {r['served']}/{r['sent']} ({r['dropped']} dropped) "
                          f"{r['served_fps'] or 0:.1f} fps; e2e p50 {L['e2e']['p50']:.1f} p99 {L['e2e']['p99']:.1f} ms; "
                          f"engine p50 {L['engine']['p50']:.1f} ms; overhead p50 {L['overhead']['p50']:.2f} "
                          f"p99 {L['overhead']['p99']:.2f} ms; others' CPU {100 * r['cpu_share']['others']:.0f}%",
                          flush=True)
    finally:
        Path(files["jpegs"]).unlink(missing_ok=True)
    engine_after = engine_rate(model, served_rgb)  # again: load drift over the run shows here
    engine_fps = (engine_before["track_fps"] + engine_after["track_fps"]) / 2
    res["engine_track"] = {"before": engine_before, "after": engine_after, "track_fps_mean": engine_fps}
    res["targets"] = {k: r["overhead_target"] for k, r in res["runs"].items()}
    res["throughput_targets"] = throughput_targets(res, engine_fps)
    res["machine"]["loadavg_at_end"] = U.loadavg()
    res["machine"]["idle_wait_total_s"] = cfg["idle_budget"] - budget
    res["wall_s"] = time.time() - t_start

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rounded(res), indent=1))
    print_report(res)
    print(f"\nwrote {args.out} ({res['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
