#!/usr/bin/env bash
# Regenerate the Python gRPC code from protos/vos/v1/vos.proto.
#
#   protos/generate.sh [OUT_DIR]      (default: vos_service/api/gen)
#
# Fixed flags so the output is reproducible byte for byte with the pinned
# grpcio-tools (tests/api/test_proto_gen.py checks the committed files).
# PYTHON selects the interpreter (default: .venv/bin/python, else python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="${1:-$root/vos_service/api/gen}"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then py="$root/.venv/bin/python"; else py=python3; fi
fi
mkdir -p "$out"
cd "$here"  # protoc records paths relative to -I: keep them relative, never absolute
"$py" -m grpc_tools.protoc -I . \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  vos/v1/vos.proto
# protoc writes an absolute import (`from vos.v1 import vos_pb2`) that only works
# with gen/ on sys.path; make it package-relative so vos_service.api.gen.vos.v1 imports.
"$py" - "$out/vos/v1/vos_pb2_grpc.py" <<'PY'
import sys
path = sys.argv[1]
src = open(path, encoding="utf-8").read()
fixed = src.replace("from vos.v1 import vos_pb2 as", "from . import vos_pb2 as")
if fixed == src:
    sys.exit(f"{path}: expected import line not found; protoc output changed")
open(path, "w", encoding="utf-8").write(fixed)
PY
