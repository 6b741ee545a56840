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

from vos_service.engine.frames import preprocess  # noqa: E402
from vos_service.engine.reference import Official, build_official  # noqa: E402
from vos_service.engine.tracker import StreamTracker  # noqa: E402
from vos_service.engine.types import Prompt  # noqa: E402

FULL = dict(size=512, frames=20, warmup=8, objects=(1, 4), hi_size=1024, hi_frames=5, hi_warmup=1,
            mem_size=128, mem_objects=2, mem_cycle=60, mem_engine_frames=5000, mem_engine_every=250,
            mem_official_frames=300, mem_official_every=25, mem_extrapolate=5000)
QUICK = dict(size=256, frames=6, warmup=2, objects=(1, 4), hi_size=512, hi_frames=3, hi_warmup=1,
             mem_size=128, mem_objects=2, mem_cycle=20, mem_engine_frames=300, mem_engine_every=50,
             mem_official_frames=60, mem_official_every=10, mem_extrapolate=5000)
# clicks on a 1280x720 frame (scaled to the clip's size), one per object
CLICKS = [(640, 360), (250, 500), (1000, 250), (900, 550), (400, 200), (1150, 600), (150, 150), (700, 650)]
STAGE_KEYS = list(U.STAGES) + ["other"]
# targets: engine/official time at 1 and 4 objects, bf16 speedup vs official fp32, bf16 IoU
T_RATIO = {1: 0.9, 4: 0.6}
T_BF16_SPEEDUP, T_BF16_IOU = 1.8, 0.98
FLAT_MIB = 8.0  # RSS "flat": grows <= this over the last 80% of the stream, nbytes() constant


def clicks(n, width, height):
    return [(x * width / 1280, y * height / 720) for x, y in CLICKS[:n]]


def no_autocast():
    # The official driver's autocast context lives inside its generator and stays on
    # between yields: the engine's steps must not inherit it.
    return torch.autocast("cpu", enabled=False)


def record(dt, timer):
    secs, calls = timer.take()
    rec = {"total": dt, **secs, "other": dt - sum(secs.values())}
    return rec, calls


def summarise(recs, calls, warmup, prompt_s):
    kept = recs[warmup:]
    return {"median_s": {k: U.median([r[k] for r in kept]) for k in ["total"] + STAGE_KEYS},
            "calls_per_frame": {k: U.median([c[k] for c in calls[warmup:]]) for k in U.STAGES},
            "per_frame_total_s": [round(r["total"], 4) for r in recs],
            "prompt_s": prompt_s}


def run_pair(eng_model, pred, frames, imgs, n_obj, warmup, official_bf16=False):
    """Step the official predictor and the engine alternately over `frames`; n_obj clicks on frame 0."""
    H, W = frames[0].shape[:2]
    pts = clicks(n_obj, W, H)
    ac = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if official_bf16 else None
    off = Official(pred, imgs, H, W, autocast=ac)
    tr = StreamTracker(eng_model)
    recs = {"official": [], "engine": []}
    calls = {"official": [], "engine": []}
    masks = {"official": [], "engine": []}
    with U.StageTimer(pred) as t_off, U.StageTimer(eng_model.sam) as t_eng:
        t0 = time.perf_counter()
        for i, p in enumerate(pts):
            off.add_points(0, i + 1, [p], [1])
        off_prompt = time.perf_counter() - t0
        t_off.take()
        with no_autocast():
            t0 = time.perf_counter()
            tr.track(frames[0])
            eng_f0 = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i, p in enumerate(pts):
                res = tr.add_prompt(i + 1, Prompt.from_points([p], [1]))
            eng_prompt = time.perf_counter() - t0
        rec, c = record(eng_f0 + eng_prompt, t_eng)
        recs["engine"].append(rec)
        calls["engine"].append(c)
        masks["engine"].append([res[0].by_id()[i + 1].mask for i in range(n_obj)])
        gen = off.propagate()
        try:
            for t in range(len(frames)):
                t0 = time.perf_counter()
                f, out = next(gen)
                rec, c = record(time.perf_counter() - t0, t_off)
                assert f == t, (f, t)
                recs["official"].append(rec)
                calls["official"].append(c)
                masks["official"].append([out[i + 1][0] for i in range(n_obj)])
                if t == 0:
                    continue
                with no_autocast():
                    t0 = time.perf_counter()
                    r = tr.track(frames[t])
                    rec, c = record(time.perf_counter() - t0, t_eng)
                recs["engine"].append(rec)
                calls["engine"].append(c)
                masks["engine"].append([r.by_id()[i + 1].mask for i in range(n_obj)])
        finally:
            gen.close()  # leaves the official autocast context
    out = {side: summarise(recs[side], calls[side], warmup, p)
           for side, p in (("official", off_prompt), ("engine", eng_prompt))}
    out["ratio_engine_over_official"] = {
        k: out["engine"]["median_s"][k] / out["official"]["median_s"][k]
        for k in ["total"] + list(U.STAGES)}
    out["iou_engine_vs_official"] = iou_stats(masks["engine"], masks["official"])
    out["mask_area_fraction_mean"] = float(np.mean([m.mean() for fm in masks["official"] for m in fm]))
    return out, masks


def iou_stats(a, b):
    ious = [U.mask_iou(x, y) for fa, fb in zip(a, b) for x, y in zip(fa, fb)]
    return {"min": float(min(ious)), "mean": float(np.mean(ious)), "n": len(ious)}


def speed_runs(args, cfg, video):
    runs, masks_fp32 = {}, {}
    S, N = cfg["size"], cfg["frames"]
    frames = U.decode_frames(video, N)
    imgs = torch.cat([preprocess(f, S) for f in frames])
    m32 = U.make_model(S, "fp32")
    m16 = U.make_model(S, "bf16")
    pred = build_official(m32)
    for model in (m32, m16):  # untimed warm-up: first-call costs (oneDNN primitives, allocator)
        run_pair(model, pred, frames[:3], imgs[:3], 1, 0, official_bf16=model is m16)
    for dtype, model in (("fp32", m32), ("bf16", m16)):
        for n in cfg["objects"]:
            key = f"{dtype}_{n}obj_{S}px"
            print(f"... {key}", flush=True)
            load0 = U.loadavg()
            r, masks = run_pair(model, pred, frames, imgs, n, cfg["warmup"], official_bf16=dtype == "bf16")
            r.update(size=S, objects=n, dtype=dtype, frames=N, warmup=cfg["warmup"],
                     loadavg_1min_start_end=[load0[0], U.loadavg()[0]])
            if dtype == "fp32":
                masks_fp32[n] = masks
            else:
                ref = runs[f"fp32_{n}obj_{S}px"]
                r["engine_bf16_speedup_vs_official_fp32"] = (
                    ref["official"]["median_s"]["total"] / r["engine"]["median_s"]["total"])
                r["official_bf16_speedup_vs_official_fp32"] = (
                    ref["official"]["median_s"]["total"] / r["official"]["median_s"]["total"])
                r["iou_engine_bf16_vs_engine_fp32"] = iou_stats(masks["engine"], masks_fp32[n]["engine"])
                r["iou_official_bf16_vs_official_fp32"] = iou_stats(masks["official"],
                                                                    masks_fp32[n]["official"])
            runs[key] = r
            del masks
            gc.collect()
    del masks_fp32, m32, m16, pred, imgs
    gc.collect()
    S, N = cfg["hi_size"], cfg["hi_frames"]
    key = f"fp32_1obj_{S}px"
    print(f"... {key}", flush=True)
    frames = frames[:N]
    m = U.make_model(S, "fp32")
    load0 = U.loadavg()
    r, _ = run_pair(m, build_official(m), frames, torch.cat([preprocess(f, S) for f in frames]), 1,
                    cfg["hi_warmup"])
    r.update(size=S, objects=1, dtype="fp32", frames=N, warmup=cfg["hi_warmup"],
             loadavg_1min_start_end=[load0[0], U.loadavg()[0]],
             note="short clip: the memory bank is not full yet (fills at frame 7)")
    runs[key] = r
    return runs


# ---- memory (each side in its own process) -----------------------------------------------

def mem_engine(p):
    base0 = U.rss_mib()
    frames = U.decode_frames(Path(p["video"]), p["cycle"])
    model = U.make_model(p["size"], "fp32")
    tr = StreamTracker(model)
    gc.collect()
    base = U.rss_mib()
    tr.track(frames[0])
    for i, pt in enumerate(clicks(p["objects"], frames[0].shape[1], frames[0].shape[0])):
        tr.add_prompt(i + 1, Prompt.from_points([pt], [1]))
    samples = [(0, U.rss_mib(), tr.nbytes())]
    t0 = time.perf_counter()
    for t in range(1, p["frames"]):
        tr.track(frames[t % len(frames)])
        if t % p["every"] == 0 or t == p["frames"] - 1:
            samples.append((t, U.rss_mib(), tr.nbytes()))
    return {"rss_process_start_mib": base0, "rss_before_stream_mib": base,
            "samples": [{"frame": t, "rss_mib": round(r, 2), "tracker_nbytes": b} for t, r, b in samples],
            "seconds_per_frame_mean": (time.perf_counter() - t0) / max(1, p["frames"] - 1)}


def mem_official(p):
    base0 = U.rss_mib()
    frames = U.decode_frames(Path(p["video"]), p["cycle"])
    H, W = frames[0].shape[:2]
    cyc = [preprocess(f, p["size"]) for f in frames]
    pts = clicks(p["objects"], W, H)
    del frames
    model = U.make_model(p["size"], "fp32")
    pred = build_official(model)
    del model
    gc.collect()
    base = U.rss_mib()
    # the official loader materialises every frame as float32 (N, 3, S, S) up front
    imgs = torch.cat([cyc[i % len(cyc)] for i in range(p["frames"])])
    off = Official(pred, imgs, H, W)
    del imgs
    after_init = U.rss_mib()
    for i, pt in enumerate(pts):
        off.add_points(0, i + 1, [pt], [1])
    samples = []
    t0 = time.perf_counter()
    for t, _ in off.propagate():
        if t % p["every"] == 0 or t == p["frames"] - 1:
            samples.append((t, U.rss_mib(), U.tensor_bytes(off.state)))
    return {"rss_process_start_mib": base0, "rss_before_init_state_mib": base,
            "rss_after_init_state_mib": after_init,
            "samples": [{"frame": t, "rss_mib": round(r, 2), "state_tensor_bytes": b} for t, r, b in samples],
            "seconds_per_frame_mean": (time.perf_counter() - t0) / p["frames"]}


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
    n, s = cfg["mem_official_frames"], off["samples"]
    init_per_frame = (off["rss_after_init_state_mib"] - off["rss_before_init_state_mib"]) / n
    prop = U.linear_slope([x["frame"] for x in s], [x["rss_mib"] for x in s])
    state = U.linear_slope([x["frame"] for x in s], [x["state_tensor_bytes"] / 2**20 for x in s])
    X = cfg["mem_extrapolate"]
    off.update(init_state_mib_per_frame=init_per_frame, propagate_rss_mib_per_frame=prop,
               propagate_state_tensor_mib_per_frame=state, total_mib_per_frame=init_per_frame + prop,
               **{f"extrapolated_rss_at_{X}_frames_mib":
                  off["rss_before_init_state_mib"] + X * (init_per_frame + prop)},
               frames_float32_mib_per_frame=3 * cfg["mem_size"] ** 2 * 4 / 2**20,
               frames_float32_mib_per_frame_at_1024=3 * 1024 * 1024 * 4 / 2**20)
    return {"size": cfg["mem_size"], "objects": cfg["mem_objects"], "engine": eng, "official": off}


# ---- report ------------------------------------------------------------------------------

def targets(res, cfg):
    S, out = cfg["size"], {}
    for n, lim in T_RATIO.items():
        r = res["runs"].get(f"fp32_{n}obj_{S}px")
        if r:
            v = r["ratio_engine_over_official"]["total"]
            out[f"fp32_{n}obj_time_ratio<={lim}"] = {"value": v, "met": v <= lim}
    for n in cfg["objects"]:
        r = res["runs"][f"bf16_{n}obj_{S}px"]
        v = r["engine_bf16_speedup_vs_official_fp32"]
        out[f"bf16_{n}obj_speedup_vs_official_fp32>={T_BF16_SPEEDUP}"] = {"value": v, "met": v >= T_BF16_SPEEDUP}
        v = r["iou_engine_bf16_vs_engine_fp32"]["min"]
        out[f"bf16_{n}obj_min_iou_vs_fp32>={T_BF16_IOU}"] = {"value": v, "met": v >= T_BF16_IOU}
    if "memory" in res:
        e = res["memory"]["engine"]
        out["engine_rss_flat"] = {"value": e["rss_growth_last80pct_mib"], "met": e["flat"]}
    return out


def print_report(res):
    hdr = f"{'run':<18}{'side':<10}{'total':>8}" + "".join(f"{k[:10]:>11}" for k in STAGE_KEYS) + "  calls/frame"
    print("\nseconds per frame (median after warm-up)\n" + hdr + "\n" + "-" * len(hdr))
    for key, r in res["runs"].items():
        for side in ("official", "engine"):
            m, c = r[side]["median_s"], r[side]["calls_per_frame"]
            print(f"{key if side == 'official' else '':<18}{side:<10}{m['total']:>8.3f}"
                  + "".join(f"{m[k]:>11.3f}" for k in STAGE_KEYS) + "  " + "/".join(f"{c[k]:g}" for k in U.STAGES))
        q = r["ratio_engine_over_official"]
        print(f"{'':<18}{'eng/off':<10}{q['total']:>8.2f}" + "".join(f"{q[k]:>11.2f}" for k in U.STAGES)
              + f"   IoU eng~off min {r['iou_engine_vs_official']['min']:.4f}")
        if "engine_bf16_speedup_vs_official_fp32" in r:
            print(f"{'':<18}bf16: engine {r['engine_bf16_speedup_vs_official_fp32']:.2f}x, official "
                  f"{r['official_bf16_speedup_vs_official_fp32']:.2f}x faster than official fp32; "
                  f"IoU engine bf16~fp32 min {r['iou_engine_bf16_vs_engine_fp32']['min']:.4f} "
                  f"mean {r['iou_engine_bf16_vs_engine_fp32']['mean']:.4f} (official bf16~fp32 min "
                  f"{r['iou_official_bf16_vs_official_fp32']['min']:.4f})")
    if "memory" in res:
        mem = res["memory"]
        e, o = mem["engine"], mem["official"]
        print(f"\nmemory ({mem['size']} px, {mem['objects']} objects)")
        print(f"  engine  : {len(e['samples'])} samples to frame {e['samples'][-1]['frame']}: RSS "
              f"{e['samples'][0]['rss_mib']:.0f} -> {e['samples'][-1]['rss_mib']:.0f} MiB, last 80%: "
              f"{e['rss_growth_last80pct_mib']:+.1f} MiB ({e['rss_slope_kib_per_frame']:+.2f} KiB/frame), "
              f"nbytes {e['tracker_nbytes_range_after_warmup']}")
        x = [k for k in o if k.startswith("extrapolated_rss_at")][0]
        print(f"  official: init_state {o['init_state_mib_per_frame']:.3f} MiB/frame + propagate "
              f"{o['propagate_rss_mib_per_frame']:.3f} MiB/frame (state tensors "
              f"{o['propagate_state_tensor_mib_per_frame']:.3f}); {x}: {o[x]:.0f} MiB")
    print("\ntargets")
    for k, v in res["targets"].items():
        print(f"  {k:<40} {v['value']:>8.3f}  {'met' if v['met'] else 'NOT met'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (small sizes, few frames)")
    ap.add_argument("--out", type=Path, default=U.REPO / "benchmarks/results/engine_vs_official.json")
    ap.add_argument("--video", default="02_cups.mp4", help="clip in ../shared/data/videos")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    ap.add_argument("--_child-out", help=argparse.SUPPRESS)
    ap.add_argument("--_child-params", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        fn = {"mem-engine": mem_engine, "mem-official": mem_official}[args._child]
        with torch.inference_mode():
            Path(args._child_out).write_text(json.dumps(fn(json.loads(args._child_params))))
        return
    cfg = QUICK if args.quick else FULL
    video = U.VIDEOS / args.video
    res = {"mode": "quick" if args.quick else "full", "config": {**cfg, "model": U.TINY, "video": args.video,
           "weights": "random seed 0, prompt encoder/mask decoder gains as tests/engine/factories.py"},
           "machine": U.machine_info()}
    t0 = time.time()
    res["runs"] = speed_runs(args, cfg, video)
    if not args.skip_memory:
        res["memory"] = memory_runs(cfg, video)
    res["targets"] = targets(res, cfg)
    res["machine"]["loadavg_at_end"] = U.loadavg()
    res["wall_s"] = time.time() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print_report(res)
    print(f"\nwrote {args.out} ({res['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
