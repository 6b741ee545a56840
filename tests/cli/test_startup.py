"""The client commands start without torch or sam2 (a camera box has neither), in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from vos_service.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = ("torch", "sam2", "grpc", "pydantic", "cv2", "av", "redis", "numpy", "prometheus_client", "aiohttp")
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}), file=sys.stderr)
"""


def loaded_by(*argv: str) -> tuple[int, set[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    report = json.loads(out.stderr.strip().splitlines()[-1])
    return report["code"], set(report["loaded"])


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("watch", "--help"), ("weights", "list"),
                                  ("weights", "download", "--help")])
def test_help_watch_and_weights_import_nothing_heavy(argv):
    code, loaded = loaded_by(*argv)
    assert code == 0 and loaded == set(), (argv, loaded)


@pytest.mark.parametrize("argv", [("stream", "--help"), ("prompt", "--help"), ("auth", "token", "--help")])
def test_client_commands_import_no_torch_or_sam2(argv):
    code, loaded = loaded_by(*argv)
    assert code == 0 and not loaded & {"torch", "sam2", "grpc", "cv2", "av"}, (argv, loaded)
