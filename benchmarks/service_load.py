#!/usr/bin/env python
"""The whole service under load: N concurrent camera streams of a real clip over gRPC.

The real Service (vos_service.service.Service: gRPC server on loopback, runtime worker,
an embedded real redis-server, its own Prometheus registry) runs in this process with
the 'nano' architecture and random weights asked for explicitly (model.config='nano',
model.random_weights=0). The cameras run in a client subprocess (VosClient, one gRPC
channel per stream), so their CPU is not on the service's GIL. Every stream sends the
same 720p clip as JPEGs encoded once before timing, with one click on frame 0:
  * live at a fixed rate per stream (phases staggered across streams), and
  * lossless as fast as gRPC flow control lets it,
for N = 1, 2, 4, 8 streams, encoder batching on (max_batch 8, max_wait 3 ms) and off.
Measured per configuration: frames served per second, end-to-end latency p50/p99 at the
client (send -> result received), drops, and the service's own overhead per frame:
end-to-end latency minus the engine compute of that frame minus the time it waited while
the worker computed other frames (definition and breakdown: benchmarks/README.md).
Usage: python benchmarks/service_load.py [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VIDEOS = Path(__file__).resolve().parents[1].parent / "shared/data/videos"

FULL = dict(frames=90, stride=3, fps=10.0, warm_frames=5, streams=(1, 2, 4, 8), max_batch=8, max_wait_ms=3.0,
            idle_wait=60.0, idle_budget=300.0, config_timeout=300.0)
QUICK = dict(FULL, frames=15, warm_frames=3, idle_wait=5.0, idle_budget=30.0, config_timeout=120.0)
MODES = ("live", "lossless")
CLICK_XY = (640.0, 360.0)  # the dog on the 1280x720 clip (tests/api/harness.py)
JPEG_QUALITY = 90
ENGINE_STAGES = ("memory_attention", "mask_decode", "memory_encode")  # per stream step; "encode" per batch
TARGET_P50_MS, TARGET_P99_MS = 5.0, 15.0
CLEAN = 0.1  # a run is "uncontended" if other processes used <= 10 % of the machine's CPU during it
# per-frame components (seconds); e2e = the sum of the first ten (see analyse())
COMPONENTS = ("stall_in", "transport_in", "decode", "queue_busy", "queue_idle", "preprocess", "encode",
              "batch_wait", "step_engine", "post_emit", "out")
VARIANTS = ("serve", "torch-off-main")
DEFINITIONS = {
    "e2e": "client: send of the frame started -> its result received (time.monotonic, one machine)",
    "engine": "the frame's image-encoder pass (the whole batch's pass) + its own memory_attention + "
              "mask_decode + memory_encode calls (the service's own stage timers)",
    "wait": "stall_in + queue_busy + batch_wait: time the frame waited while the worker (or its stream's "
            "reader) was busy with OTHER frames",
    "overhead": "e2e - engine - wait = transport_in + decode + queue_idle + preprocess + post_emit + out "
                "(see analyse() in the script); frame 0 of each stream (it carries the click) excluded",
    "served_fps": "results received / (last result received - first frame sent), all streams together",
    "engine_amortised": "encode / batch size + own step stages (a throughput view, not a latency)",
}
OVERHEAD_PARTS = ("transport_in", "decode", "queue_idle", "preprocess", "post_emit", "out")
WAIT_PARTS = ("stall_in", "queue_busy", "batch_wait")
ENGINE_PARTS = ("encode", "step_engine")


# ---- CPU accounting (the dev box is shared: other jobs' CPU use is measured, not guessed) ------

def _jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


class CpuShare:
    """Shares of the machine's CPU during a block: this process, its (reaped) children, others."""

    def __enter__(self) -> "CpuShare":
        self._j, self._t = _jiffies(), os.times()
        return self

    def __exit__(self, *exc) -> None:
        busy, total = (b - a for a, b in zip(self._j, _jiffies()))
        t, hz = os.times(), os.sysconf("SC_CLK_TCK")
        own = (t.user - self._t.user + t.system - self._t.system) * hz
        kids = (t.children_user - self._t.children_user + t.children_system - self._t.children_system) * hz
        total = max(total, 1)
        self.service, self.client = own / total, kids / total
        self.others = max(0.0, busy - own - kids) / total


def idle_wait(max_wait: float, threshold: float = CLEAN, window: float = 0.5) -> float:
    """Wait (at most max_wait s) until other processes use <= threshold of the CPUs; seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait:
        b0, n0 = _jiffies()
        time.sleep(window)
        b1, n1 = _jiffies()
        if n1 == n0 or (b1 - b0) / (n1 - n0) <= threshold:
            break
    return time.monotonic() - t0


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# ---- the cameras (client subprocess: `--_client PARAMS`) -------------------------------------

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


# ---- the service side: per-frame timestamps from hooks on the live Service ---------------------

class Probe:
    """Per-frame timestamps inside a running Service, without changing its code.

    Instance-attribute wrappers (all time.monotonic(), the clock the api stamps
    `received_at` with and the client subprocess uses too):
      metrics.stage   (set before start, so the encoder and trackers bind it): encode of each
                      batch, and the memory_attention / mask_decode / memory_encode calls of each
                      stream step; the Prometheus histograms are still observed by the original;
      manager.open    -> session.offer: when a decoded frame is first offered to its stream's
                      queue (enq) and when it was taken (adm; lossless may wait for room);
      worker._run_batch: start / end of every worker batch and which frames it holds;
      manager.emit:   when a frame's result leaves the worker (start / end of emit).
    """

    def __init__(self, svc) -> None:
        self.svc = svc
        self._orig_stage = svc.metrics.stage
        svc.metrics.stage = self._stage
        self.reset()

    def reset(self) -> None:
        self.offers: dict[tuple[str, int], dict] = {}
        self.frames: dict[tuple[str, int], dict] = {}
        self.batches: list[dict] = []
        self._cur = None
        self._acc: dict[str, float] = defaultdict(float)
        self._mark = None

    @contextlib.contextmanager
    def _stage(self, name: str):
        t0 = time.monotonic()
        try:
            with self._orig_stage(name):
                yield
        finally:
            t1 = time.monotonic()
            if name == "encode" and self._cur is not None:
                self._cur["enc"] = (t0, t1)
                self._mark = t1
            elif name in ENGINE_STAGES:
                self._acc[name] += t1 - t0

    def attach(self) -> None:
        mgr = self.svc.manager
        orig_open, orig_emit, orig_run = mgr.open, mgr.emit, mgr.worker._run_batch

        def open_(spec, sink):
            session = orig_open(spec, sink)
            orig_offer, sid = session.offer, spec.stream_id

            def offer(task):
                rec = self.offers.setdefault((sid, task.index), {"recv": task.received_at, "enq": time.monotonic()})
                out = orig_offer(task)
                if out is None:
                    rec["adm"] = time.monotonic()
                return out

            session.offer = offer
            return session

        def run_batch(batch):
            b = {"start": time.monotonic(), "frames": [(s.stream_id, t.index) for s, t in batch], "enc": None}
            self._cur, self._mark = b, None
            self._acc.clear()
            try:
                orig_run(batch)
            finally:
                b["end"] = time.monotonic()
                self.batches.append(b)
                self._cur = None

        def emit(session, output):
            t = time.monotonic()
            rec = None
            if not output.revised and self._cur is not None:
                rec = {"batch": self._cur, "own_start": self._mark, "emit_start": t, "engine": dict(self._acc)}
                self._acc.clear()
            try:
                orig_emit(session, output)
            finally:
                if rec is not None:
                    rec["emit_end"] = self._mark = time.monotonic()
                    self.frames[(session.stream_id, output.frame_index)] = rec

        mgr.open = open_
        mgr.worker._run_batch = run_batch
        mgr.emit = emit


def registry_samples(registry) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in registry.collect() for s in fam.samples}


def prom_delta(before: dict, after: dict) -> dict[tuple, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def prom_summary(d: dict[tuple, float]) -> dict:
    def get(name, **labels):
        return d.get((name, tuple(sorted(labels.items()))), 0.0)

    stages = {}
    for st in ("frame_decode", "encode", "memory_attention", "mask_decode", "memory_encode", "publish"):
        n, s = get("vos_stage_seconds_count", stage=st), get("vos_stage_seconds_sum", stage=st)
        stages[st] = {"calls": n, "mean_ms_per_call": 1e3 * s / n if n else None, "sum_s": s}
    processed = get("vos_frames_processed_total")
    engine_sum = sum(stages[s]["sum_s"] for s in ("encode",) + ENGINE_STAGES)
    nb = get("vos_encoder_batch_size_count")
    lat_n, qw_n = get("vos_frame_latency_seconds_count"), get("vos_queue_wait_seconds_count")
    dropped = {dict(k[1]).get("reason"): v for k, v in d.items() if k[0] == "vos_frames_dropped_total" and v}
    return {
        "frames_received": get("vos_frames_received_total"), "frames_processed": processed,
        "frames_dropped_by_reason": dropped, "stages": stages,
        "encoder_passes": nb, "encoder_batch_mean": get("vos_encoder_batch_size_sum") / nb if nb else None,
        # amortised: each encoder pass shared by the frames of its batch
        "engine_ms_per_frame_amortised": 1e3 * engine_sum / processed if processed else None,
        "frame_latency_mean_ms (received->published)":
            1e3 * get("vos_frame_latency_seconds_sum") / lat_n if lat_n else None,
        "queue_wait_mean_ms (received->batch start, incl. decode)":
            1e3 * get("vos_queue_wait_seconds_sum") / qw_n if qw_n else None,
        "published": get("vos_published_total"), "publish_dropped": get("vos_publish_dropped_total"),
        "publish_failures": get("vos_publish_failures_total"),
    }


# ---- one configuration ------------------------------------------------------------------------

async def run_config(model, base_settings, mode: str, n: int, batching: bool, cfg: dict, files: dict,
                     phase: str, idle_max: float) -> dict:
    from vos_service.service import Service

    settings = base_settings.with_overrides({"scheduler.batching": batching})
    svc = Service(settings, model=model)
    probe = Probe(svc)
    ep = await svc.start()
    proc = params = out_file = None
    try:
        probe.attach()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            out_file = f.name + ".out"
            json.dump(dict(target=f"127.0.0.1:{ep.grpc_port}", n=n, mode=mode, fps=cfg["fps"],
                           frames=cfg["frames"], warm_frames=cfg["warm_frames"], phase=phase,
                           frames_file=files["jpegs"], width=files["width"], height=files["height"],
                           out_file=out_file), f)
            params = f.name
        proc = await asyncio.create_subprocess_exec(sys.executable, __file__, "--_client", params,
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(proc.stdout.readline(), cfg["config_timeout"])
        if line.strip() != b"WARM_DONE":
            raise RuntimeError(f"client: expected WARM_DONE, got {line!r} (exit {await proc.wait()})")
        await wait_until(lambda: not svc.manager.snapshot(), 30)  # warm-up streams freed
        waited = await asyncio.to_thread(idle_wait, idle_max)
        probe.reset()
        before = registry_samples(svc.metrics.registry)
        load0 = loadavg()
        with CpuShare() as cpu:
            t_go = time.monotonic()
            proc.stdin.write(b"GO\n")
            await proc.stdin.drain()
            rc = await asyncio.wait_for(proc.wait(), cfg["config_timeout"])
            wall = time.monotonic() - t_go
        if rc != 0:
            raise RuntimeError(f"client subprocess failed (exit {rc})")
        await wait_until(lambda: not svc.manager.snapshot(), 30)
        after = registry_samples(svc.metrics.registry)
        client = json.loads(Path(out_file).read_text())
    finally:  # synchronous steps first: they must happen even if this task is being cancelled
        for path in (params, out_file):
            if path and os.path.exists(path):
                os.unlink(path)
        if proc is not None and proc.returncode is None:
            proc.kill()
        redis = svc.redis
        try:
            await svc.stop()
        finally:
            if redis is not None:  # Service.stop() stops redis-server but keeps its temp dir: remove it
                redis.close()
    res = analyse(client, probe, cfg, mode, n)
    res.update(mode=mode, streams=n, batching=batching, wall_s=wall, idle_wait_s=waited,
               cpu_share={"service": cpu.service, "client": cpu.client, "others": cpu.others},
               uncontended=cpu.others <= CLEAN, loadavg_1min_start_end=[load0[0], loadavg()[0]],
               prometheus=prom_summary(prom_delta(before, after)))
    p = res["prometheus"]
    probe_engine = sum(b["enc"][1] - b["enc"][0] for b in probe.batches if b["enc"]) + sum(
        sum(f["engine"].values()) for f in probe.frames.values())
    prom_engine = sum(p["stages"][s]["sum_s"] for s in ("encode",) + ENGINE_STAGES)
    res["check_probe_vs_prometheus_engine_s"] = [probe_engine, prom_engine]
    return res


async def wait_until(pred, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("the service did not free its streams")
        await asyncio.sleep(0.02)


def pct(xs, q):
    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def dist_ms(xs) -> dict:
    xs = np.asarray(xs, float) * 1e3
    if not len(xs):
        return {"n": 0}
    return {"n": int(len(xs)), "mean": float(xs.mean()), "p50": pct(xs, 50), "p90": pct(xs, 90),
            "p99": pct(xs, 99), "max": float(xs.max())}


def analyse(client: dict, probe: Probe, cfg: dict, mode: str, n: int) -> dict:
    """Join the client's send/receive times with the service's per-frame timestamps.

    Per served frame (all time.monotonic(), one machine):
      e2e          = result received at the client - send started at the client
      stall_in     = the stream's reader still busy with the previous frame (decoding it, or
                     in lossless waiting for queue room) when this one was sent          [wait]
      transport_in = client send -> api has the request (gRPC, HTTP/2, proto)      [overhead]
      decode       = api has it -> decoded frame offered to the queue (pool hop, JPEG decode)
                                                                                   [overhead]
      queue_busy   = in the queue while the worker was running batches (other frames) [wait]
      queue_idle   = in the queue while the worker was not running a batch (wake-up,
                     scheduler, batching's max_wait fill)                          [overhead]
      preprocess   = batch start -> encoder pass starts (resize + normalise the batch) [overhead]
      encode       = the image encoder pass of its batch (shared)                    [engine]
      batch_wait   = other streams' steps (and emits) in the same batch before this one [wait]
      step_engine  = its memory_attention + mask_decode + memory_encode              [engine]
      post_emit    = rest of its step: masks upsampled to 720p, boxes, bookkeeping [overhead]
      out          = emit -> result at the client (RLE, proto, gRPC, client parse) [overhead]
    overhead = e2e - engine - wait = transport_in + decode + queue_idle + preprocess
               + post_emit + out.
    Frame 0 of each stream (it carries the click: prompt decoding is not staged) is excluded.
    """
    starts = np.array([b["start"] for b in probe.batches])
    ends = np.array([b["end"] for b in probe.batches])

    def busy(a, b):
        if b <= a or not len(starts):
            return 0.0
        return float(np.clip(np.minimum(ends, b) - np.maximum(starts, a), 0, None).sum())

    rows, missing = [], 0
    sent = served = dropped = 0
    first_send, last_result = float("inf"), float("-inf")
    rle_chars, visible, closed = [], [], []
    for st in client["streams"]:
        sid = st["id"]
        results = {int(k): v for k, v in st["result"].items()}
        sent += len(st["sent"])
        served += len(results)
        dropped += len(st["drop"])
        rle_chars += st["rle_chars"]
        visible += st["visible"]
        closed.append(st["closed"])
        if st["sent"]:
            first_send = min(first_send, st["sent"][0])
        if results:
            last_result = max(last_result, max(results.values()))
        for i, t_send in enumerate(st["sent"]):
            t_res = results.get(i)
            if t_res is None or i == 0:
                continue
            off, fr = probe.offers.get((sid, i)), probe.frames.get((sid, i))
            if off is None or fr is None or "adm" not in off or fr["batch"]["enc"] is None \
                    or fr["own_start"] is None:
                missing += 1
                continue
            b = fr["batch"]
            prev = probe.offers.get((sid, i - 1), {}).get("adm")
            base = t_send if prev is None else max(t_send, prev)
            enc0, enc1 = b["enc"]
            step_engine = sum(fr["engine"].values())
            c = {"e2e": t_res - t_send, "stall_in": base - t_send, "transport_in": off["recv"] - base,
                 "decode": off["enq"] - off["recv"], "preprocess": enc0 - b["start"], "encode": enc1 - enc0,
                 "batch_wait": fr["own_start"] - enc1, "step_engine": step_engine,
                 "post_emit": fr["emit_start"] - fr["own_start"] - step_engine, "out": t_res - fr["emit_start"],
                 "batch_size": len(b["frames"])}
            queue = b["start"] - off["enq"]
            c["queue_busy"] = busy(off["enq"], b["start"])
            c["queue_idle"] = queue - c["queue_busy"]
            c["wait"] = sum(c[k] for k in WAIT_PARTS)
            c["engine"] = sum(c[k] for k in ENGINE_PARTS)
            c["engine_amortised"] = c["encode"] / c["batch_size"] + step_engine
            c["overhead"] = c["e2e"] - c["wait"] - c["engine"]
            c["overhead_excl_decode"] = c["overhead"] - c["decode"]
            rows.append(c)
    span = last_result - first_send
    col = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
    summary = {k: dist_ms(col.get(k, [])) for k in ("e2e", "engine", "engine_amortised", "wait", "overhead",
                                                      "overhead_excl_decode") + COMPONENTS}
    # the decomposition must add up (it telescopes by construction)
    err = max((abs(r["e2e"] - sum(r[k] for k in COMPONENTS)) for r in rows), default=0.0)
    ov = summary["overhead"]
    sizes = [len(b["frames"]) for b in probe.batches]
    return {
        "sent": sent, "served": served, "dropped": dropped, "unaccounted": sent - served - dropped,
        "closed_reasons": sorted(set(map(str, closed))),
        "offered_fps": n * cfg["fps"] if mode == "live" else None,
        "served_fps": served / span if span > 0 else None, "span_s": span,
        "frames_analysed": len(rows), "frames_missing_probe": missing,
        "latency_ms": summary, "decomposition_max_error_ms": err * 1e3,
        "batches": {"count": len(sizes), "mean_size": float(np.mean(sizes)) if sizes else None,
                    "size_histogram": {int(s): int(c) for s, c in zip(*np.unique(sizes, return_counts=True))}},
        "overhead_target": {"p50_ms": ov.get("p50"), "p99_ms": ov.get("p99"),
                            "p50_met": bool(ov.get("p50", np.inf) <= TARGET_P50_MS),
                            "p99_met": bool(ov.get("p99", np.inf) <= TARGET_P99_MS)},
        "mask": {"rle_chars_mean": float(np.mean(rle_chars)) if rle_chars else None,
                 "visible_fraction": float(np.mean(visible)) if visible else None},
    }


# ---- report ------------------------------------------------------------------------------------

def key(mode, n, batching, fps):
    return f"{mode}{'@%gfps' % fps if mode == 'live' else ''}_{n}streams_batching_{'on' if batching else 'off'}"


def print_report(res) -> None:
    fps = res["config"]["fps"]
    hdr = (f"{'mode':<10}{'N':>3}{'batch':>6}{'sent':>6}{'served':>7}{'drop':>5}{'fps':>7} |"
           f"{'e2e p50':>9}{'p99':>9} |{'engine':>7}{'wait':>9} |{'ovh p50':>8}{'p99':>7}{'target':>8} |"
           f"{'b.mean':>7}{'others':>7}")
    print("\nper configuration (ms; engine/wait are p50; overhead = e2e - engine - wait, per frame)")
    print(hdr + "\n" + "-" * len(hdr))
    for r in res["runs"].values():
        L = r["latency_ms"]
        t = r["overhead_target"]
        met = "met" if t["p50_met"] and t["p99_met"] else ("p50 ok" if t["p50_met"] else "NOT met")
        mode = f"live@{fps:g}" if r["mode"] == "live" else "lossless"
        print(f"{mode:<10}{r['streams']:>3}{'on' if r['batching'] else 'off':>6}{r['sent']:>6}{r['served']:>7}"
              f"{r['dropped']:>5}{r['served_fps'] or 0:>7.1f} |{L['e2e']['p50']:>9.1f}{L['e2e']['p99']:>9.1f} |"
              f"{L['engine']['p50']:>7.1f}{L['wait']['p50']:>9.1f} |{L['overhead']['p50']:>8.1f}"
              f"{L['overhead']['p99']:>7.1f}{met:>8} |{r['batches']['mean_size'] or 0:>7.2f}"
              f"{100 * r['cpu_share']['others']:>6.0f}%" + ("" if r["uncontended"] else " CONTENDED"))
    parts = OVERHEAD_PARTS + ENGINE_PARTS + WAIT_PARTS
    hdr = f"{'mode':<10}{'N':>3}{'batch':>6} |" + "".join(f"{p[:11]:>12}" for p in parts)
    print("\nwhere the time goes: median per frame (ms); overhead parts | engine | wait")
    print(hdr + "\n" + "-" * len(hdr))
    for r in res["runs"].values():
        L = r["latency_ms"]
        mode = f"live@{fps:g}" if r["mode"] == "live" else "lossless"
        print(f"{mode:<10}{r['streams']:>3}{'on' if r['batching'] else 'off':>6} |"
              + "".join(f"{L[p]['p50']:>12.2f}" for p in parts))
    cmp = res.get("compare_torch_off_main")
    if cmp and "runs" in cmp:
        hdr = (f"{'mode':<10}{'N':>3}{'batch':>6} |{'fps':>7}{'e2e50':>9}{'eng50':>7}{'ovh50':>7}{'ovh99':>7}"
               f"{'drop':>5} |{'fps':>7}{'e2e50':>9}{'eng50':>7}{'ovh50':>7}{'ovh99':>7}{'drop':>5}")
        print("\nmodel built on the main thread (as `vos-service serve`) | torch kept off the main thread "
              "(ms, p50 unless p99)")
        print(hdr + "\n" + "-" * len(hdr))
        for k, r in res["runs"].items():
            o = cmp["runs"].get(k)
            if o is None:
                continue
            mode = f"live@{fps:g}" if r["mode"] == "live" else "lossless"
            cells = []
            for x in (r, o):
                L = x["latency_ms"]
                cells.append(f"{x['served_fps'] or 0:>7.1f}{L['e2e']['p50']:>9.1f}{L['engine']['p50']:>7.1f}"
                             f"{L['overhead']['p50']:>7.1f}{L['overhead']['p99']:>7.1f}{x['dropped']:>5}")
            print(f"{mode:<10}{r['streams']:>3}{'on' if r['batching'] else 'off':>6} |{cells[0]} |{cells[1]}"
                  + ("" if r["uncontended"] and o["uncontended"] else "  CONTENDED"))
    print(f"\ntarget: service overhead <= {TARGET_P50_MS:g} ms p50 and <= {TARGET_P99_MS:g} ms p99 (720p JPEG)")
    for k, v in res["targets"].items():
        o = (cmp or {}).get("targets", {}).get(k)
        print(f"  {k:<40} p50 {v['p50_ms']:6.2f}  p99 {v['p99_ms']:6.2f}  "
              f"{'met' if v['p50_met'] and v['p99_met'] else 'NOT met':<8}"
              + (f"  torch off main: p50 {o['p50_ms']:6.2f}  p99 {o['p99_ms']:6.2f}  "
                 f"{'met' if o['p50_met'] and o['p99_met'] else 'NOT met'}" if o else ""))


def rounded(obj, digits: int = 4):
    """Floats rounded for the JSON (ms to 0.1 us, s to 0.1 ms): smaller files, no false precision."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj


def build_model_and_warm(settings, rgb, max_batch: int):
    """The model of model.config / model.random_weights, plus an untimed torch warm-up: every
    encoder batch size the scheduler can form and a few tracker steps."""
    from vos_service.engine.encoder import ImageEncoder
    from vos_service.engine.model import build_model
    from vos_service.engine.tracker import StreamTracker
    from vos_service.engine.types import Prompt
    from vos_service.model_options import spec_from_settings

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 15 frames per stream, no compare pass "
                                                               "(~1.5 min idle)")
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
    ap.add_argument("--variant", choices=VARIANTS, default="serve",
                    help="serve: the model is built (and warmed) on the main thread, as `vos-service serve` "
                         "does; torch-off-main: in a short-lived thread, so only the worker thread ever runs "
                         "torch (see README: OpenMP teams)")
    ap.add_argument("--compare", action=argparse.BooleanOptionalAction, default=None,
                    help="after the runs, the same runs again with --variant torch-off-main in a subprocess "
                         "(default: on in full mode, off with --quick)")
    ap.add_argument("--_client", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._client:
        asyncio.run(client_main(json.loads(Path(args._client).read_text())))
        return

    import signal
    import threading

    import av
    import cv2
    import grpc
    import torch

    sys.path.insert(0, str(HERE))
    import _bench_util as U  # noqa: E402

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
        "model.config": "nano", "model.random_weights": 0,
        "server.port": 0, "server.metrics_port": 0,
        "scheduler.max_batch": cfg["max_batch"], "scheduler.max_wait_ms": cfg["max_wait_ms"]})
    if args.variant == "serve":
        model = build_model_and_warm(base, rgb, cfg["max_batch"])  # built once, shared by every Service
    else:
        out: dict = {}
        th = threading.Thread(target=lambda: out.update(model=build_model_and_warm(base, rgb, cfg["max_batch"])))
        th.start()
        th.join()  # the thread exits: its OpenMP team goes with it
        model = out["model"]

    res = {"mode": "quick" if args.quick else "full", "variant": args.variant,
           "config": {**cfg, "streams": list(cfg["streams"]), "modes": modes, "video": args.video,
                      "frame_size": [W, H], "jpeg_quality": JPEG_QUALITY,
                      "jpeg_kib_mean": float(np.mean([len(j) for j in jpegs[:cfg["frames"]]]) / 1024),
                      "click": list(CLICK_XY), "live_phase": args.phase,
                      "model": "nano (model.config='nano'), random weights seed 0 (model.random_weights=0)",
                      "model_image_size": model.image_size,
                      "settings": {"scheduler.max_batch": cfg["max_batch"],
                                   "scheduler.max_wait_ms": cfg["max_wait_ms"],
                                   "streams.queue_size": base.streams.queue_size,
                                   "redis": "embedded redis-server (redis.url unset)",
                                   "server.per_stream_metrics": base.server.per_stream_metrics}},
           "definitions": DEFINITIONS,
           "machine": {**U.machine_info(), "grpcio": grpc.__version__, "torch_threads": torch.get_num_threads()},
           "runs": {}}
    print(f"service_load [{args.variant}]: {res['mode']}, {cfg['frames']} frames/stream of {args.video} "
          f"({W}x{H} JPEG q{JPEG_QUALITY}, {res['config']['jpeg_kib_mean']:.0f} KiB), streams "
          f"{list(cfg['streams'])}, modes {modes}; loadavg {loadavg()}", flush=True)
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
    res["targets"] = {k: r["overhead_target"] for k, r in res["runs"].items()}
    res["machine"]["loadavg_at_end"] = loadavg()
    res["machine"]["idle_wait_total_s"] = cfg["idle_budget"] - budget
    res["wall_s"] = time.time() - t_start

    if args.compare is None:
        args.compare = not args.quick
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rounded(res), indent=1))  # kept even if the compare pass fails
    if args.variant == "serve" and args.compare:
        # The same matrix with torch kept off the main thread: a fresh process is needed, an
        # OpenMP team, once started on the main thread, stays for the life of the process.
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            tmp = Path(f.name)
        argv = [a for a in sys.argv[1:] if not a.startswith("--out=")]
        if "--out" in argv:
            j = argv.index("--out")
            del argv[j:j + 2]
        print("\n... the same runs with --variant torch-off-main (subprocess)", flush=True)
        child = subprocess.Popen([sys.executable, __file__, *argv, "--variant", "torch-off-main", "--no-compare",
                                  "--idle-budget", str(max(0.0, budget)), "--out", str(tmp)])
        try:
            rc = child.wait()
        finally:
            if child.poll() is None:
                child.terminate()
                child.wait()
        try:
            if rc != 0:
                raise RuntimeError(f"the torch-off-main pass failed (exit {rc})")
            other = json.loads(tmp.read_text())
            res["compare_torch_off_main"] = {k: other[k] for k in ("runs", "targets", "wall_s", "machine")}
        except Exception as e:  # noqa: BLE001 - the main pass stands on its own
            res["compare_torch_off_main"] = {"error": str(e)}
            print(f"compare pass: {e}", flush=True)
        finally:
            tmp.unlink(missing_ok=True)
        res["wall_s"] = time.time() - t_start
        args.out.write_text(json.dumps(rounded(res), indent=1))
    if args.variant == "serve":
        print_report(res)
    print(f"\nwrote {args.out} ({res['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
