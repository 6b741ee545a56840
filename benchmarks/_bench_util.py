"""Helpers for the benchmarks: stage timers, RSS, frames, models, machine info, CPU contention.

engine_vs_official.py uses all of it; service_load.py (via _load_service.py) the machine info,
load averages and CPU accounting."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared/data/videos"
TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"

# Seeded random weights at the default init give masks that barely depend on the prompt
# or the frame (IoU comparisons would be vacuous). The gains live in tests/support/reference.py:
# scale prompt encoder / mask decoder weights so masks differ between objects and frames.
# Speed does not depend on the weights' values.
sys.path.insert(0, str(REPO))  # the official predictor's driver is test support: tests/support/reference.py
from tests.support.reference import DISCRIMINATIVE_GAINS, scale_weights  # noqa: E402

# stage name -> attribute path on a SAM2Base instance (the official predictor is one too)
STAGES = {
    "encoder": "forward_image",
    "memory_attention": "memory_attention.forward",
    "decode": "_forward_sam_heads",
    "memory_encode": "_encode_new_memory",
}


class StageTimer:
    """Patches a model instance's stage methods with wall-clock timers; restores them on exit.

    Instance attributes shadow the class's methods, so every call through `self.x(...)`
    (the official predictor) or `sam.x(...)` (engine sam_ops) is timed, and
    nn.Module.__call__ picks up a patched `forward` on the memory_attention submodule.
    """

    def __init__(self, sam, stages: dict[str, str] = STAGES, extra=()) -> None:
        """extra: (stage, object, attribute, counted, first) more callables timed as `stage`, e.g.
        a module-level function shared by several models: only calls whose first argument is
        first(sam) are this timer's (counted=False: their time joins the stage, their calls do not)."""
        self.sam = sam
        self.stages = stages
        self.extra = tuple(extra)
        self.seconds = {k: 0.0 for k in stages}
        self.calls = {k: 0 for k in stages}
        self._saved: list[tuple[object, str, bool, object]] = []
        self.sync = _synchronizer(sam)

    def _wrap(self, name: str, fn, counted: bool = True, owner=None):
        def timed(*args, **kwargs):
            if owner is not None and not (args and args[0] is owner):
                return fn(*args, **kwargs)  # another model's call (or another timer's)
            self.sync()
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += counted
        return timed

    def __enter__(self) -> "StageTimer":
        targets = []
        for name, path in self.stages.items():
            *parents, attr = path.split(".")
            obj = self.sam
            for p in parents:
                obj = getattr(obj, p)
            targets.append((name, obj, attr, True, None))
        for name, obj, attr, counted, first in (*targets, *self.extra):
            had_own = attr in vars(obj)
            orig = getattr(obj, attr)
            self._saved.append((obj, attr, had_own, vars(obj).get(attr)))
            _setattr(obj)(obj, attr, self._wrap(name, orig, counted, first(self.sam) if first else None))
        return self

    def __exit__(self, *exc) -> None:
        for obj, attr, had_own, orig in reversed(self._saved):
            if had_own:
                _setattr(obj)(obj, attr, orig)
            else:
                object.__delattr__(obj, attr)
        self._saved.clear()

    def take(self) -> tuple[dict[str, float], dict[str, int]]:
        """Seconds and call counts per stage since the last take(); resets them."""
        out = dict(self.seconds), dict(self.calls)
        for k in self.seconds:
            self.seconds[k], self.calls[k] = 0.0, 0
        return out


def _setattr(obj):
    """Patch a module instance past nn.Module.__setattr__ (which would register submodules);
    anything else (a Python module's function) with plain setattr."""
    return object.__setattr__ if isinstance(obj, torch.nn.Module) else setattr


def _synchronizer(sam):
    """Timers around asynchronous CUDA work must wait for it; on CPU a no-op."""
    dev = next(sam.parameters()).device
    return (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def tensor_bytes(obj, seen=None) -> int:
    """Bytes of the distinct tensor storages reachable through dicts/lists/tuples."""
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        st = obj.untyped_storage()
        key = st.data_ptr()
        if key in seen:
            return 0
        seen.add(key)
        return st.nbytes()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return sum(tensor_bytes(v, seen) for v in obj)
    return 0


def decode_frames(video: Path, count: int, start: int = 0) -> list[np.ndarray]:
    """`count` consecutive RGB uint8 frames of a clip, from frame `start`."""
    out = []
    with av.open(str(video)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i >= start:
                out.append(fr.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    if len(out) < count:
        raise RuntimeError(f"{video} has fewer than {start + count} frames")
    return out


def make_model(image_size: int, dtype: str = "fp32", seed: int = 0, gains=DISCRIMINATIVE_GAINS,
               device: str = "cpu", compile: bool = False):
    from vos_service.engine.model import ModelSpec, build_model

    spec = ModelSpec(TINY, random_init_seed=seed, image_size=image_size, dtype=dtype, device=device, compile=compile)
    return scale_weights(build_model(spec), gains)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def median(xs):
    return float(statistics.median(xs)) if xs else float("nan")


def linear_slope(xs, ys) -> float:
    if len(xs) < 2:
        return float("nan")
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0])


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def machine_info() -> dict:
    cpu = "unknown"
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and cpu == "unknown":
            cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    mem_total = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")), None)

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except Exception:
            return None

    import sam2  # noqa: F401
    from importlib.metadata import version
    return {
        "cpu_model": cpu, "logical_cpus": os.cpu_count(),
        "cpu_flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
        # what bf16 runs on: AMX tiles (Sapphire Rapids+), AVX-512 BF16 dot products, or neither
        "cpu_bf16": ("amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "none"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "mem_total_mib": mem_total, "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(), "sam2": version("sam2"),
        "git_head": git("rev-parse", "--short", "HEAD"),
        "engine_uncommitted_changes": bool(git("status", "--porcelain", "--", "vos_service")),
        "loadavg_at_start": loadavg(),
        "note": "shared 2-core machine; other jobs may have run concurrently (see loadavg_*)",
    }


# ---- machine contention (the dev machine is shared: other jobs' CPU use is measured, not guessed)

def _jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def _idle_now(threshold: float, window: float) -> bool:
    """Sample the CPUs for `window` s: did all processes together use <= threshold of them?"""
    b0, n0 = _jiffies()
    time.sleep(window)
    b1, n1 = _jiffies()
    return n1 == n0 or (b1 - b0) / (n1 - n0) <= threshold


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
        self.others_and_children = max(0.0, busy - own) / total


class Contention(CpuShare):
    """Fraction of the machine's CPU time used by OTHER processes during a with-block; unlike
    CpuShare.others, reaped children count as others (engine_vs_official has none of its own)."""

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.others = self.others_and_children


class IdleGate:
    """Waits (bounded per call and in total) until other processes leave the CPUs mostly idle."""

    def __init__(self, max_wait_s: float, budget_s: float, threshold: float = 0.1, window_s: float = 0.25):
        self.max_wait, self.budget, self.threshold, self.window = max_wait_s, budget_s, threshold, window_s
        self.waited_total = 0.0

    def wait(self) -> float:
        t0 = time.perf_counter()
        while self.max_wait > 0 and self.waited_total < self.budget:
            if _idle_now(self.threshold, self.window):
                break
            if time.perf_counter() - t0 >= self.max_wait:
                break
            self.waited_total += self.window
        return time.perf_counter() - t0


# Unlike IdleGate, idle_wait keeps no budget (its caller charges the seconds it returns) and samples 0.5 s.
def idle_wait(max_wait: float, threshold: float = 0.1, window: float = 0.5) -> float:
    """Wait (at most max_wait s) until other processes use <= threshold of the CPUs; seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait:
        if _idle_now(threshold, window):
            break
    return time.monotonic() - t0


# clicks on a 1280x720 frame (scaled to the clip's size), one per object
CLICKS = [(640, 360), (250, 500), (1000, 250), (900, 550), (400, 200), (1150, 600), (150, 150), (700, 650)]


def clicks(n, width, height):
    return [(x * width / 1280, y * height / 720) for x, y in CLICKS[:n]]


# ---- long-stream memory, run in a fresh subprocess each (called via the script's --_child)

def mem_engine(p):
    from vos_service.engine.tracker import StreamTracker
    from vos_service.engine.types import Prompt
    base0 = rss_mib()
    frames = decode_frames(Path(p["video"]), p["cycle"])
    model = make_model(p["size"], "fp32")
    tr = StreamTracker(model)
    gc.collect()
    base = rss_mib()
    tr.track(frames[0])
    for i, pt in enumerate(clicks(p["objects"], frames[0].shape[1], frames[0].shape[0])):
        tr.add_prompt(i + 1, Prompt.from_points([pt], [1]))
    samples = [(0, rss_mib(), tr.nbytes())]
    t0 = time.perf_counter()
    for t in range(1, p["frames"]):
        tr.track(frames[t % len(frames)])
        if t % p["every"] == 0 or t == p["frames"] - 1:
            samples.append((t, rss_mib(), tr.nbytes()))
    return {"rss_process_start_mib": base0, "rss_before_stream_mib": base,
            "samples": [{"frame": t, "rss_mib": round(r, 2), "tracker_nbytes": b} for t, r, b in samples],
            "seconds_per_frame_mean": (time.perf_counter() - t0) / max(1, p["frames"] - 1)}


def mem_official(p):
    from vos_service.engine.frames import preprocess
    from tests.support.reference import Official, build_official
    from vos_service.engine.types import Prompt
    base0 = rss_mib()
    frames = decode_frames(Path(p["video"]), p["cycle"])
    H, W = frames[0].shape[:2]
    cyc = [preprocess(f, p["size"]) for f in frames]
    pts = clicks(p["objects"], W, H)
    del frames
    model = make_model(p["size"], "fp32")
    pred = build_official(model)
    del model
    gc.collect()
    base = rss_mib()
    # the official loader materialises every frame as float32 (N, 3, S, S) up front
    imgs = torch.cat([cyc[i % len(cyc)] for i in range(p["frames"])])
    off = Official(pred, imgs, H, W)
    del imgs
    after_init = rss_mib()
    for i, pt in enumerate(pts):
        off.add_points(0, i + 1, [pt], [1])
    samples = []
    t0 = time.perf_counter()
    for t, _ in off.propagate():
        if t % p["every"] == 0 or t == p["frames"] - 1:
            samples.append((t, rss_mib(), tensor_bytes(off.state)))
    return {"rss_process_start_mib": base0, "rss_before_init_state_mib": base,
            "rss_after_init_state_mib": after_init,
            "samples": [{"frame": t, "rss_mib": round(r, 2), "state_tensor_bytes": b} for t, r, b in samples],
            "seconds_per_frame_mean": (time.perf_counter() - t0) / p["frames"]}
