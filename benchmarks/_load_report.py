"""Analysis and report of service_load.py: per-frame latency decomposition, summaries, tables.

`analyse` joins the client's send / receive times with the service probe's per-frame
timestamps (_load_service.Probe) into the parts of each frame's end-to-end latency;
`print_report` prints the tables; `rounded` trims the JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from _load_service import Probe

TARGET_P50_MS, TARGET_P99_MS = 5.0, 15.0
# per-frame components (seconds); e2e = their sum (see analyse())
COMPONENTS = ("stall_in", "transport_in", "decode", "queue_busy", "queue_idle", "preprocess", "encode",
              "batch_wait", "step_engine", "post_emit", "out")
DEFINITIONS = {
    "e2e": "client: send of the frame started -> its result received (time.monotonic, one machine)",
    "engine": "the frame's image-encoder pass (the whole batch's pass) + its own memory_attention + "
              "mask_decode + memory_encode calls (the service's own stage timers)",
    "wait": "stall_in + queue_busy + batch_wait: time the frame waited while the worker (or its stream's "
            "reader) was busy with OTHER frames",
    "overhead": "e2e - engine - wait = transport_in + decode + queue_idle + preprocess + post_emit + out "
                "(see analyse() in benchmarks/_load_report.py); frame 0 of each stream (it carries the click) excluded",
    "served_fps": "results received / (last result received - first frame sent), all streams together",
    "engine_amortised": "encode / batch size + own step stages (a throughput view, not a latency)",
}
OVERHEAD_PARTS = ("transport_in", "decode", "queue_idle", "preprocess", "post_emit", "out")
WAIT_PARTS = ("stall_in", "queue_busy", "batch_wait")
ENGINE_PARTS = ("encode", "step_engine")


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
    print(f"\ntarget: service overhead <= {TARGET_P50_MS:g} ms p50 and <= {TARGET_P99_MS:g} ms p99 (720p JPEG)")
    for k, v in res["targets"].items():
        print(f"  {k:<40} p50 {v['p50_ms']:6.2f}  p99 {v['p99_ms']:6.2f}  "
              f"{'met' if v['p50_met'] and v['p99_met'] else 'NOT met'}")
    if "engine_track" in res:
        e = res["engine_track"]
        print(f"bare engine track(): {e['before']['track_fps']:.1f} fps before, {e['after']['track_fps']:.1f} after "
              f"the service runs ({e['before']['per_frame_ms_p50']:.1f} / {e['after']['per_frame_ms_p50']:.1f} ms)")
    for k, v in res.get("throughput_targets", {}).items():
        print(f"  {k:<40} {v['value']:6.2f}  {'met' if v['met'] else 'NOT met'}"
              + ("" if v["uncontended"] else "  (contended)"))


def rounded(obj, digits: int = 4):
    """Floats rounded for the JSON (ms to 0.1 us, s to 0.1 ms): smaller files, no false precision."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj
