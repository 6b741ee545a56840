"""A client-only install (no extras: no torch, no sam2) streams, prompts and watches a real server.

SLOW (about a minute, more on a cold pip cache): builds this checkout's wheel, makes a fresh
virtualenv without system site-packages, installs the wheel with its base dependencies only,
and runs its `vos-service` against `vos-service serve` started from the full environment.
Marked `client_install` (deselect with `-m "not client_install"`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, VIDEOS
from tests.fuzz.server import ServerProcess

pytestmark = pytest.mark.client_install


def _run(*cmd: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("client-install")
    src = work / "src"  # a copy, so the build leaves nothing in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "vos_service", src / "vos_service", ignore=shutil.ignore_patterns("__pycache__"))
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", work / "dist", src)
    wheel = next((work / "dist").glob("vos_service-*.whl"))
    venv = work / "venv"
    _run(sys.executable, "-m", "venv", venv)  # no --system-site-packages: only what the wheel pulls in
    _run(venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel)
    return venv


def test_the_base_install_has_no_torch_and_sam2(client_venv):
    missing = subprocess.run([client_venv / "bin" / "python", "-c", "import torch"], capture_output=True)
    assert missing.returncode != 0
    assert subprocess.run([client_venv / "bin" / "python", "-c", "import sam2"], capture_output=True).returncode != 0
    assert "watch" in _run(client_venv / "bin" / "vos-service", "--help").stdout


def test_stream_prompt_and_watch_against_a_server(client_venv):
    cli = client_venv / "bin" / "vos-service"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOS_")}
    video = VIDEOS / "01_dog.mp4"
    with ServerProcess() as server:
        env["VOS_SERVER"] = server.target  # as a camera box would set it
        done = _run(cli, "stream", video, "--stream-id", "cam-a", "--point", "640,360", "--max-frames", "4",
                    "--out", client_venv.parent / "overlay.mp4", env=env)
        assert sum(line.startswith("frame ") for line in done.stdout.splitlines()) == 4
        assert (client_venv.parent / "overlay.mp4").stat().st_size > 0

        # A live stream, and an operator's correction on its latest frame while it runs.
        camera = subprocess.Popen([str(cli), "stream", str(video), "--stream-id", "cam-b", "--point", "640,360",
                                   "--realtime", "--max-frames", "90"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert camera.stdout is not None
            assert camera.stdout.readline().startswith("frame ")  # the stream is open and answering
            prompt = _run(cli, "prompt", "--stream-id", "cam-b", "--obj-id", "2", "--point", "300,200", env=env)
            assert "obj 2 revision" in prompt.stdout
        finally:
            out, err = camera.communicate(timeout=300)
        assert camera.returncode == 0, err

        watch = _run(cli, "watch", "cam-a", "--from-start", "--count", "4", env={**env, "VOS_REDIS_URL":
                                                                                 server.redis_url})
        lines = watch.stdout.strip().splitlines()
        assert len(lines) == 4 and all(line.startswith("cam-a frame ") for line in lines)
