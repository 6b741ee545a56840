#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: a .venv with torch, the official sam2
# package and vos_service itself (editable, with every extra: server, embedded-redis,
# train, test, dev). A client-only machine needs none of this: `pip install vos_service`.
# Why the order: sam2==1.1.0 is an sdist whose setup.py imports torch, so torch
# must be there first and sam2 must build without isolation (else pip pulls a
# second multi-GB torch into the build env). SAM2_BUILD_CUDA=0: no nvcc needed.
# torch 2.14.1 + torchvision 0.29.1 satisfy sam2's declared requirements and are
# served from this machine kind's local package cache (~60 s).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests run for real: Chromium for the console's browser tests (Playwright
# drives it through executable_path; a browser download is impossible here and never
# attempted), HAProxy for the fleet's routing tests, and Prometheus for promtool (tests/deploy
# validates the shipped Prometheus config, rules and alert tests; the daemon is never started).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null  # chromium, haproxy, prometheus
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/pip install -q --disable-pip-version-check)
"${PIP[@]}" 'torch==2.14.1' 'torchvision==0.29.1'
.venv/bin/python -c "import sam2" 2>/dev/null || SAM2_BUILD_CUDA=0 "${PIP[@]}" --no-build-isolation 'sam2==1.1.0'
"${PIP[@]}" -e '.[server,embedded-redis,train,test,dev]'
.venv/bin/python -c "import torch, sam2, vos_service; print('setup ok: torch', torch.__version__)"
