#!/usr/bin/env python
"""StreamTracker (the engine) vs the official sam2 SAM2VideoPredictor, in one run.

Same config (sam2.1 tiny), same seeded random weights (the official predictor gets a
copy), same real frames, same clicks (source pixels). The two sides are stepped
frame by frame in alternation so machine load hits both alike. Measured:
  * seconds per frame (median after warm-up), total and by stage, fp32, 1 and N objects;
  * bf16: engine (ModelSpec dtype=bf16) and official (torch.autocast) vs official fp32,
    mask IoU of engine bf16 vs engine fp32;
  * a short clip at high resolution, fp32, 1 object;
  * RSS over a long stream, engine and official, each in its own subprocess.
Usage: python benchmarks/engine_vs_official.py [--quick] [--out PATH]
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # the official propagate_in_video wraps a tqdm bar

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_util as U  # noqa: E402
from _evo_report import STAGE_KEYS, print_report, targets  # noqa: E402

from vos_service.engine.frames import preprocess  # noqa: E402
from tests.support.reference import Official, build_official  # noqa: E402
from vos_service.engine import sam_ops  # noqa: E402
from vos_service.engine.tracker import StreamTracker, TrackerConfig  # noqa: E402
from vos_service.engine.types import Prompt  # noqa: E402

FULL = dict(size=512, frames=20, warmup=8, objects=(1, 4), hi_size=1024, hi_frames=5, hi_warmup=1,
            mem_size=128, mem_objects=2, mem_cycle=60, mem_engine_frames=5000, mem_engine_every=250,
            mem_official_frames=300, mem_official_every=25, mem_extrapolate=5000)
QUICK = dict(size=256, frames=6, warmup=2, objects=(1, 4), hi_size=512, hi_frames=3, hi_warmup=1,
             mem_size=128, mem_objects=2, mem_cycle=20, mem_engine_frames=300, mem_engine_every=50,
             mem_official_frames=60, mem_official_every=10, mem_extrapolate=5000)
# The engine runs memory attention through engine.attention (sam_ops' names), not through
# sam.memory_attention.forward: time those as its memory_attention stage.
ENGINE_STAGES = (("memory_attention", sam_ops, "memory_attention", True, lambda sam: sam.memory_attention),
                 ("memory_attention", sam_ops, "image_query", False, lambda sam: sam))
CLEAN = 0.1  # a step is "uncontended" if other processes used <= 10% of the machine's CPU during it
FLAT_MIB = 8.0  # RSS "flat": grows <= this over the last 80% of the stream, nbytes() constant


DEVICE = "cpu"  # set from --device in main()


def no_autocast():
    # The official driver's autocast context lives inside its generator and stays on
    # between yields: the engine's steps must not inherit it.
    return torch.autocast(DEVICE, enabled=False)


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def record(dt, timer, others):
    secs, calls = timer.take()
    rec = {"total": dt, **secs, "other": dt - sum(secs.values()), "contention": others}
    return rec, calls


def timed(gate, fn):
    """Run fn() after waiting for a quiet machine; (result, wall seconds, others' CPU share)."""
    if gate is not None:
        gate.wait()
    with U.Contention() as c:
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        dt = time.perf_counter() - t0
    return out, dt, c.others


def summarise(recs, calls, use, prompt_s):
    return {"median_s": {k: U.median([recs[t][k] for t in use]) for k in ["total"] + STAGE_KEYS},
            "calls_per_frame": {k: U.median([calls[t][k] for t in use]) for k in U.STAGES},
            "per_frame_total_s": [round(r["total"], 4) for r in recs],
            "per_frame_contention": [round(r["contention"], 3) for r in recs],
            "prompt_s": prompt_s}


class OfficialSide:
    """reference.Official (add_points on frame 0, then one propagate step per frame)."""

    def __init__(self, pred, imgs, H, W, bf16=False):
        self.sam, self.bf16 = pred, bf16
        self.off = Official(pred, imgs, H, W,
                            autocast=(lambda: torch.autocast(DEVICE, dtype=torch.bfloat16)) if bf16 else None)
        self.gen = None

    def prompt(self, frame0, pts):
        for i, p in enumerate(pts):
            self.off.add_points(0, i + 1, [p], [1])
        self.gen = self.off.propagate()  # frame 0 comes out of the first step

    def step(self, t, frame):
        # a bf16 generator keeps its autocast on between yields: every other step opts out
        with contextlib.nullcontext() if self.bf16 else no_autocast():
            f, out = next(self.gen)
        assert f == t, (f, t)
        return [out[i][0] for i in sorted(out)]

    def close(self):
        if self.gen is not None:
            self.gen.close()  # leaves its autocast context


class EngineSide:
    """StreamTracker: track(frame 0), add_prompt per object, then track() per frame."""

    def __init__(self, model, attention_chunk=None):
        self.sam = model.sam
        self.tr = StreamTracker(model, TrackerConfig(attention_chunk=attention_chunk))

    def prompt(self, frame0, pts):
        with no_autocast():
            self.tr.track(frame0)
            for i, p in enumerate(pts):
                res = self.tr.add_prompt(i + 1, Prompt.from_points([p], [1]))
        return [o.mask for o in sorted(res[0].objects, key=lambda o: o.obj_id)]

    def step(self, t, frame):
        with no_autocast():
            r = self.tr.track(frame)
        return [o.mask for o in sorted(r.objects, key=lambda o: o.obj_id)]

    def close(self):
        pass


def run_sides(sides, frames, n_obj, warmup, gate=None):
    """Step every side over `frames` in alternation, frame by frame; n_obj clicks on frame 0."""
    pts = U.clicks(n_obj, frames[0].shape[1], frames[0].shape[0])
    recs, calls, masks, prompt_s = {k: [] for k in sides}, {k: [] for k in sides}, {k: [] for k in sides}, {}

    def keep(k, rec_calls, m):
        recs[k].append(rec_calls[0])
        calls[k].append(rec_calls[1])
        masks[k].append(m)

    with contextlib.ExitStack() as stack:
        timers = {k: stack.enter_context(U.StageTimer(s.sam, extra=ENGINE_STAGES if k.startswith("engine") else ()))
                  for k, s in sides.items()}
        for k, s in sides.items():
            stack.callback(s.close)
            t0 = time.perf_counter()
            m0 = s.prompt(frames[0], pts)
            prompt_s[k] = time.perf_counter() - t0
            rec_calls = record(prompt_s[k], timers[k], 0.0)
            if m0 is not None:  # the engine's frame 0 (its track + prompts); official: from propagate
                keep(k, rec_calls, m0)
        for t in range(len(frames)):
            for k, s in sides.items():
                if len(recs[k]) > t:
                    continue
                m, dt, others = timed(gate, lambda: s.step(t, frames[t]))
                keep(k, record(dt, timers[k], others), m)
    # frames after warm-up where no side's step shared the CPUs with other jobs
    kept = list(range(warmup, len(frames)))
    clean = [t for t in kept if max(recs[k][t]["contention"] for k in sides) <= CLEAN]
    use = clean if clean and len(clean) >= len(kept) // 2 else kept
    out = {k: summarise(recs[k], calls[k], use, prompt_s[k]) for k in sides}
    out["frames_used"] = use
    out["frames_used_are_uncontended"] = use is clean
    med = {k: out[k]["median_s"] for k in sides}
    out["ratio_engine_over_official"] = {
        k: med["engine"][k] / (med["official"][k] or float("nan")) for k in ["total"] + list(U.STAGES)}
    out["ratio_engine_over_official_per_frame_median"] = U.median(
        [recs["engine"][t]["total"] / recs["official"][t]["total"] for t in use])
    out["iou_engine_vs_official"] = iou_stats(masks["engine"], masks["official"])
    out["mask_area_fraction_mean"] = float(np.mean([m.mean() for fm in masks["official"] for m in fm]))
    if "engine_batched" in sides:
        out["ratio_engine_batched_over_official"] = med["engine_batched"]["total"] / med["official"]["total"]
        out["ratio_engine_batched_over_engine"] = med["engine_batched"]["total"] / med["engine"]["total"]
        out["iou_engine_batched_vs_engine"] = iou_stats(masks["engine_batched"], masks["engine"])
    if "official_fp32" in sides:
        out["engine_bf16_speedup_vs_official_fp32"] = med["official_fp32"]["total"] / med["engine"]["total"]
        out["official_bf16_speedup_vs_official_fp32"] = med["official_fp32"]["total"] / med["official"]["total"]
        out["iou_official_bf16_vs_official_fp32"] = iou_stats(masks["official"], masks["official_fp32"])
    return out, masks


def iou_stats(a, b):
    ious = [U.mask_iou(x, y) for fa, fb in zip(a, b) for x, y in zip(fa, fb)]
    return {"min": float(min(ious)), "mean": float(np.mean(ious)), "n": len(ious)}


def speed_runs(args, cfg, video, gate):
    runs = {}
    S, N = cfg["size"], cfg["frames"]
    frames = U.decode_frames(video, N)
    H, W = frames[0].shape[:2]
    imgs = torch.cat([preprocess(f, S) for f in frames]).to(DEVICE)
    for compiled in cfg["compile"]:
        runs.update(speed_runs_of(args, cfg, frames, imgs, H, W, compiled, gate))
        gc.collect()
    if not cfg.get("hires", True):
        return runs
    S, N = cfg["hi_size"], cfg["hi_frames"]
    key = f"fp32_1obj_{S}px"
    print(f"... {key}", flush=True)
    frames = frames[:N]
    m = U.make_model(S, "fp32", device=DEVICE)
    load0 = U.loadavg()
    imgs = torch.cat([preprocess(f, S) for f in frames]).to(DEVICE)
    r, _ = run_sides({"official": OfficialSide(build_official(m), imgs, H, W), "engine": EngineSide(m)},
                     frames, 1, cfg["hi_warmup"], gate=gate)
    r.update(size=S, objects=1, dtype="fp32", frames=N, warmup=cfg["hi_warmup"],
             loadavg_1min_start_end=[load0[0], U.loadavg()[0]],
             note="short clip: the memory bank is not full yet (fills at frame 7)")
    runs[key] = r
    return runs


def speed_runs_of(args, cfg, frames, imgs, H, W, compiled, gate):
    """The fp32/bf16 x objects runs at cfg['size'], image encoders compiled (both sides) or not."""
    runs, engine_fp32_masks = {}, {}
    S, N = cfg["size"], cfg["frames"]
    tag = "_compiled" if compiled else ""
    t0 = time.perf_counter()
    models = {d: U.make_model(S, d, device=DEVICE, compile=compiled) for d in cfg["dtypes"]}
    m32 = models.get("fp32") or U.make_model(S, "fp32", device=DEVICE)
    pred, pred_ref = build_official(m32), build_official(m32)  # pred_ref: official fp32 beside bf16
    if compiled:
        for p in (pred, pred_ref):
            p.image_encoder.compile(dynamic=False)

    # the batched arm gets its own copy: each side's stage timers patch their model instance
    batched_model = copy.deepcopy(m32) if cfg["batched_arm"] and max(cfg["objects"]) > 1 else None

    def sides(model, bf16, n_frames, n_obj=1):
        out = {"official": OfficialSide(pred, imgs[:n_frames], H, W, bf16=bf16), "engine": EngineSide(model)}
        if bf16:
            out["official_fp32"] = OfficialSide(pred_ref, imgs[:n_frames], H, W)
        elif n_obj > 1 and cfg["batched_arm"]:  # the other memory-attention path, for the by-device rule
            out["engine_batched"] = EngineSide(batched_model, attention_chunk=0)
        return out

    for dtype, model in models.items():  # untimed warm-up: first-call costs (oneDNN primitives, compiling)
        run_sides(sides(model, dtype == "bf16", 3), frames[:3], 1, 1)
    startup = time.perf_counter() - t0
    for dtype, model in models.items():
        for n in cfg["objects"]:
            key = f"{dtype}_{n}obj_{S}px{tag}"
            print(f"... {key}", flush=True)
            load0 = U.loadavg()
            r, masks = run_sides(sides(model, dtype == "bf16", N, n), frames, n, cfg["warmup"], gate=gate)
            r.update(size=S, objects=n, dtype=dtype, frames=N, warmup=cfg["warmup"], compiled=compiled,
                     loadavg_1min_start_end=[load0[0], U.loadavg()[0]],
                     build_and_warmup_s=startup)  # for compiled runs: what compiling costs at start-up
            if dtype == "fp32":
                engine_fp32_masks[n] = masks["engine"]
            elif n in engine_fp32_masks:
                r["iou_engine_bf16_vs_engine_fp32"] = iou_stats(masks["engine"], engine_fp32_masks[n])
            runs[key] = r
            del masks
            gc.collect()
    return runs


# ---- memory (each side in its own process: _bench_util.mem_engine / mem_official) ---------

def run_child(kind, params):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        subprocess.run([sys.executable, __file__, "--_child", kind, "--_child-out", out,
                        "--_child-params", json.dumps(params)], check=True)
        return json.loads(Path(out).read_text())
    finally:
        os.unlink(out)


def memory_runs(cfg, video):
    common = dict(video=str(video), size=cfg["mem_size"], objects=cfg["mem_objects"], cycle=cfg["mem_cycle"])
    print(f"... memory: engine, {cfg['mem_engine_frames']} frames (subprocess)", flush=True)
    eng = run_child("mem-engine", dict(common, frames=cfg["mem_engine_frames"], every=cfg["mem_engine_every"]))
    s = eng["samples"]
    warm = [x for x in s if x["frame"] >= cfg["mem_engine_frames"] // 5]
    eng["rss_growth_last80pct_mib"] = warm[-1]["rss_mib"] - warm[0]["rss_mib"]
    eng["rss_slope_kib_per_frame"] = 1024 * U.linear_slope([x["frame"] for x in warm], [x["rss_mib"] for x in warm])
    nb = [x["tracker_nbytes"] for x in warm]
    eng["tracker_nbytes_range_after_warmup"] = [min(nb), max(nb)]
    eng["flat"] = bool(eng["rss_growth_last80pct_mib"] <= FLAT_MIB and min(nb) == max(nb))
    print(f"... memory: official, {cfg['mem_official_frames']} frames (subprocess)", flush=True)
    off = run_child("mem-official", dict(common, frames=cfg["mem_official_frames"],
                                         every=cfg["mem_official_every"]))
    n, s, S, k = cfg["mem_official_frames"], off["samples"], cfg["mem_size"], cfg["mem_objects"]
    # RSS alone under-reports at small sizes (glibc reuses the heap freed by decoding and model
    # building), so the held bytes are also counted exactly: frames + state tensors' growth.
    init_rss = (off["rss_after_init_state_mib"] - off["rss_before_init_state_mib"]) / n
    prop_rss = U.linear_slope([x["frame"] for x in s], [x["rss_mib"] for x in s])
    state = U.linear_slope([x["frame"] for x in s], [x["state_tensor_bytes"] / 2**20 for x in s])
    frames = 3 * S * S * 4 / 2**20
    X = cfg["mem_extrapolate"]
    off.update(rss_init_state_mib_per_frame=init_rss, rss_propagate_mib_per_frame=prop_rss,
               frames_float32_mib_per_frame=frames, state_tensor_growth_mib_per_frame=state,
               held_mib_per_frame=frames + state,
               **{f"extrapolated_rss_at_{X}_frames_mib": off["rss_before_init_state_mib"] + X * (frames + state),
                  f"extrapolated_held_at_{X}_frames_1024px_{k}obj_mib": X * (12.0 + state * (1024 / S) ** 2)})
    return {"size": cfg["mem_size"], "objects": cfg["mem_objects"], "engine": eng, "official": off}


# ---- report ------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (small sizes, few frames)")
    ap.add_argument("--out", type=Path, default=U.REPO / "benchmarks/results/engine_vs_official.json")
    ap.add_argument("--video", default="02_cups.mp4", help="clip in ../shared/data/videos")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu | cuda (both sides; memory runs are CPU-only)")
    ap.add_argument("--size", type=int, help="image size of the main runs (default: full 512, quick 256)")
    ap.add_argument("--frames", type=int, help="frames per run (default: full 20, quick 6)")
    ap.add_argument("--objects", help="comma-separated object counts (default 1,4)")
    ap.add_argument("--dtypes", default="fp32,bf16", help="fp32,bf16 or one of them")
    ap.add_argument("--compile", choices=["off", "on", "both"], default="off",
                    help="torch.compile both sides' image encoders (start-up cost in build_and_warmup_s)")
    ap.add_argument("--no-hires", action="store_true", help="skip the short high-resolution run")
    ap.add_argument("--no-batched-arm", action="store_true",
                    help="skip the engine side with memory attention batched over objects")
    ap.add_argument("--idle-wait", type=float,
                    help="before each timed step wait up to this long for other jobs to leave the CPUs idle "
                         "(default: quick 5 s, full 600 s)")
    ap.add_argument("--idle-budget", type=float, help="total seconds the gate may wait (quick 60, full 3000)")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    ap.add_argument("--_child-out", help=argparse.SUPPRESS)
    ap.add_argument("--_child-params", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        fn = {"mem-engine": U.mem_engine, "mem-official": U.mem_official}[args._child]
        with torch.inference_mode():
            Path(args._child_out).write_text(json.dumps(fn(json.loads(args._child_params))))
        return
    global DEVICE
    DEVICE = args.device
    cfg = dict(QUICK if args.quick else FULL)
    for k in ("size", "frames"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    if args.objects:
        cfg["objects"] = tuple(int(x) for x in args.objects.split(","))
    cfg.update(dtypes=tuple(d for d in args.dtypes.split(",") if d), hires=not args.no_hires,
               batched_arm=not args.no_batched_arm, device=args.device,
               compile={"off": (False,), "on": (True,), "both": (False, True)}[args.compile])
    cfg["warmup"] = min(cfg["warmup"], cfg["frames"] - 2)
    video = U.VIDEOS / args.video
    res = {"mode": "quick" if args.quick else "full", "config": {**cfg, "model": U.TINY, "video": args.video,
           "attention_chunk": "engine: by device (engine.attention.auto_chunk)",
           "weights": "random seed 0, prompt encoder/mask decoder gains as tests/engine/factories.py"},
           "machine": U.machine_info()}
    t0 = time.time()
    if args.idle_wait is None:
        args.idle_wait = 5.0 if args.quick else 600.0
    if args.idle_budget is None:
        args.idle_budget = 60.0 if args.quick else 3000.0
    gate = U.IdleGate(args.idle_wait, args.idle_budget)
    res["runs"] = speed_runs(args, cfg, video, gate)
    res["machine"]["idle_gate"] = {"max_wait_per_step_s": args.idle_wait, "budget_s": args.idle_budget,
                                   "waited_total_s": gate.waited_total, "clean_threshold": CLEAN}

    def save(final):
        res["targets"] = targets(res, cfg)
        res["machine"]["loadavg_at_end"] = U.loadavg()
        res["wall_s"] = time.time() - t0
        res["complete"] = final
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))

    skip_memory = args.skip_memory or DEVICE != "cpu"
    save(final=skip_memory)  # keep the speed results if the long memory runs get interrupted
    if not skip_memory:
        res["memory"] = memory_runs(cfg, video)
        save(final=True)
    print_report(res)
    print(f"\nwrote {args.out} ({res['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
