"""benchmarks/gpu_check.sh cannot rot: its every step runs here, tiny, on the CPU.

GPU_CHECK_SMOKE=1 runs the same two benchmarks (engine vs official, the service under load)
with the same flags the GPU run uses, at sizes a 2-core machine runs in about a minute, and
merges their JSON as the GPU run does. Only the device and the sizes differ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_script_runs_end_to_end_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "GPU_CHECK_SMOKE": "1", "PY": sys.executable, "OUT": str(out)}
    proc = subprocess.run(["bash", str(REPO / "benchmarks/gpu_check.sh")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["device"] == "cpu" and res["smoke"] is True
    e = res["engine_vs_official"]
    assert set(e["runs"]) == {"fp32_1obj_128px", "fp32_2obj_128px", "bf16_1obj_128px", "bf16_2obj_128px"}
    for r in e["runs"].values():  # both sides really ran and were compared
        assert r["engine"]["median_s"]["total"] > 0 and r["official"]["median_s"]["total"] > 0
        if r["dtype"] == "fp32":  # bf16 masks differ from the official's autocast at their edges
            assert 0.9 <= r["iou_engine_vs_official"]["min"] <= 1.0
    assert "ratio_engine_batched_over_official" in e["runs"]["fp32_2obj_128px"]
    targets = res["targets"]["engine_vs_official"]
    assert "fp32_1obj_time_ratio<=0.85" in targets and "bf16_1obj_time_ratio_same_autocast<=0.85" in targets
    s = res["service_load"]
    run = s["runs"]["lossless_1streams_batching_on"]
    assert run["served"] == run["sent"] == 4 and run["dropped"] == 0
    assert s["engine_track"]["track_fps_mean"] > 0
    assert "lossless_1stream_fps_vs_engine_track>=0.9" in res["targets"]["service_throughput"]
