"""The service side of service_load.py: hooks on a live Service and one timed configuration.

`Probe` takes per-frame timestamps inside the running Service without changing its code;
`run_config` starts a fresh Service (and its redis-server), drives it with the camera
client subprocess, and returns the configuration's measurements (analysed by _load_report)
with the Prometheus deltas and CPU shares of the run. Imports torch (via _bench_util and
the Service): the client subprocess never imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import _bench_util as U
from _load_config import CLEAN, ENGINE_STAGES, SCRIPT
from _load_report import analyse


# ---- per-frame timestamps from hooks on the live Service ---------------------------------------

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

        def open_(spec, sink, *args, **kwargs):
            session = orig_open(spec, sink, *args, **kwargs)
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

        def emit(session, output, *args, **kwargs):
            t = time.monotonic()
            rec = None
            if not output.revised and self._cur is not None:
                rec = {"batch": self._cur, "own_start": self._mark, "emit_start": t, "engine": dict(self._acc)}
                self._acc.clear()
            try:
                orig_emit(session, output, *args, **kwargs)
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
        proc = await asyncio.create_subprocess_exec(sys.executable, str(SCRIPT), "--_client", params,
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(proc.stdout.readline(), cfg["config_timeout"])
        if line.strip() != b"WARM_DONE":
            raise RuntimeError(f"client: expected WARM_DONE, got {line!r} (exit {await proc.wait()})")
        await wait_until(lambda: not svc.manager.snapshot(), 30)  # warm-up streams freed
        waited = await asyncio.to_thread(U.idle_wait, idle_max, CLEAN)
        probe.reset()
        before = registry_samples(svc.metrics.registry)
        load0 = U.loadavg()
        with U.CpuShare() as cpu:
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
               uncontended=cpu.others <= CLEAN, loadavg_1min_start_end=[load0[0], U.loadavg()[0]],
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
