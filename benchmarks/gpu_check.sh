#!/usr/bin/env bash
# The GPU check: one script, about 8 minutes on one GPU, nothing installed beyond the
# project's own set-up (deploy/setup.sh). It runs
#   1. engine vs official SAM2VideoPredictor at 1024 px (sam2.1 tiny, seeded random weights):
#      fp32 and bf16 (same autocast on both sides), torch.compile off and on, 1/4/16 objects;
#   2. the whole service (gRPC, worker, embedded Redis) under 1/8/32 streams, live and lossless,
#      model on the GPU;
# and writes one JSON (default benchmarks/results/gpu_check.json) holding both results.
#
#   bash benchmarks/gpu_check.sh                      # on a machine with a GPU
#   GPU_CHECK_SMOKE=1 bash benchmarks/gpu_check.sh    # the same steps, tiny, on the CPU (tests run this)
#
# Env: PY (python, default .venv/bin/python), OUT (the JSON), DEVICE (default cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/results/gpu_check.json}
DEVICE=${DEVICE:-cuda}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [[ -n "${GPU_CHECK_SMOKE:-}" ]]; then  # every step, at sizes a 2-core CPU runs in about a minute
  DEVICE=cpu
  ENGINE_ARGS=(--size 128 --objects 1,2 --frames 3 --compile off)
  SERVICE_ARGS=(--quick --streams 1 --modes lossless --frames 4)
else
  if [[ "$DEVICE" == cuda* ]] && ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "gpu_check: torch sees no CUDA device (set DEVICE=cpu or GPU_CHECK_SMOKE=1 to run on the CPU)" >&2
    exit 2
  fi
  ENGINE_ARGS=(--size 1024 --objects 1,4,16 --frames 12 --compile both)
  SERVICE_ARGS=(--streams 1,8,32 --modes live,lossless --frames 60)
fi

echo "== engine vs official ($DEVICE) =="
"$PY" benchmarks/engine_vs_official.py --device "$DEVICE" "${ENGINE_ARGS[@]}" --dtypes fp32,bf16 \
  --no-hires --skip-memory --idle-wait 0 --idle-budget 0 --out "$WORK/engine.json"
echo "== service load ($DEVICE) =="
"$PY" benchmarks/service_load.py --device "$DEVICE" "${SERVICE_ARGS[@]}" \
  --idle-wait 0 --idle-budget 0 --out "$WORK/service.json"

mkdir -p "$(dirname "$OUT")"
"$PY" - "$WORK/engine.json" "$WORK/service.json" "$OUT" "$DEVICE" "${GPU_CHECK_SMOKE:-}" <<'PY'
import json, sys, time
engine, service, out, device, smoke = sys.argv[1:6]
e, s = json.load(open(engine)), json.load(open(service))
res = {"device": device, "smoke": bool(smoke), "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "gpu": e["machine"].get("gpu"), "git_head": e["machine"].get("git_head"),
       "targets": {"engine_vs_official": e["targets"], "service_overhead": s["targets"],
                   "service_throughput": s.get("throughput_targets", {})},
       "engine_vs_official": e, "service_load": s}
json.dump(res, open(out, "w"), indent=1)
print(f"wrote {out}")
PY
