"""The committed generated code is exactly what protos/generate.sh makes from the .proto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

GENERATED = ("vos_pb2.py", "vos_pb2.pyi", "vos_pb2_grpc.py")


def test_generated_code_is_reproducible_from_the_proto(tmp_path: Path):
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", str(REPO / "protos" / "generate.sh"), str(tmp_path)], check=True, env=env,
                   capture_output=True, timeout=120)
    committed = REPO / "vos_service" / "api" / "gen" / "vos" / "v1"
    for name in GENERATED:
        fresh = (tmp_path / "vos" / "v1" / name).read_bytes()
        assert fresh == (committed / name).read_bytes(), f"{name} is stale: run protos/generate.sh"


def test_generated_grpc_module_imports_as_a_package():
    from vos_service.api.gen.vos.v1 import vos_pb2, vos_pb2_grpc

    assert "from . import vos_pb2" in (REPO / "vos_service/api/gen/vos/v1/vos_pb2_grpc.py").read_text()
    assert vos_pb2_grpc.VosServiceStub and vos_pb2.DESCRIPTOR.services_by_name["VosService"].full_name == \
        "vos.v1.VosService"
