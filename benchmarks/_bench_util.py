"""Helpers for benchmarks/engine_vs_official.py: stage timers, RSS, frames, models, machine info."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared/data/videos"
TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"

# Seeded random weights at the default init give masks that barely depend on the prompt
# or the frame (IoU comparisons would be vacuous). Same gains as tests/engine/factories.py:
# scale prompt encoder / mask decoder weights so masks differ between objects and frames.
# Speed does not depend on the weights' values.
DISCRIMINATIVE_GAINS = (("sam_prompt_encoder.", 3.0), ("sam_mask_decoder.", 3.0),
                        ("sam_mask_decoder.pred_obj_score_head.layers.2.", 3.0))

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

    def __init__(self, sam, stages: dict[str, str] = STAGES) -> None:
        self.sam = sam
        self.stages = stages
        self.seconds = {k: 0.0 for k in stages}
        self.calls = {k: 0 for k in stages}
        self._saved: list[tuple[object, str, bool, object]] = []

    def _wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += 1
        return timed

    def __enter__(self) -> "StageTimer":
        for name, path in self.stages.items():
            *parents, attr = path.split(".")
            obj = self.sam
            for p in parents:
                obj = getattr(obj, p)
            had_own = attr in vars(obj)
            orig = getattr(obj, attr)
            self._saved.append((obj, attr, had_own, vars(obj).get(attr)))
            object.__setattr__(obj, attr, self._wrap(name, orig))
        return self

    def __exit__(self, *exc) -> None:
        for obj, attr, had_own, orig in reversed(self._saved):
            if had_own:
                object.__setattr__(obj, attr, orig)
            else:
                object.__delattr__(obj, attr)
        self._saved.clear()

    def take(self) -> tuple[dict[str, float], dict[str, int]]:
        """Seconds and call counts per stage since the last take(); resets them."""
        out = dict(self.seconds), dict(self.calls)
        for k in self.seconds:
            self.seconds[k], self.calls[k] = 0.0, 0
        return out


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


def make_model(image_size: int, dtype: str = "fp32", seed: int = 0, gains=DISCRIMINATIVE_GAINS):
    from vos_service.engine.model import ModelSpec, build_model

    m = build_model(ModelSpec(TINY, random_init_seed=seed, image_size=image_size, dtype=dtype))
    with torch.no_grad():
        for name, p in m.sam.named_parameters():
            for prefix, gain in gains:
                if p.dim() >= 2 and name.startswith(prefix):
                    p.mul_(gain)
    return m


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
        "mem_total_mib": mem_total, "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(), "sam2": version("sam2"),
        "git_head": git("rev-parse", "--short", "HEAD"),
        "engine_uncommitted_changes": bool(git("status", "--porcelain", "--", "vos_service")),
        "loadavg_at_start": loadavg(),
        "note": "shared 2-core machine; other jobs may have run concurrently (see loadavg_*)",
    }
