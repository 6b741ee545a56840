"""The CLI passes credentials (flags and environment) to a real `vos-service serve` over TLS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import VIDEOS
from tests.fuzz.server import ServerProcess
from tests.security.certs import Pki
from vos_service.api.auth import hash_token, new_token

CAM, OP, VIEWER = new_token(), new_token(), new_token()


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOS_")}
    return subprocess.run([sys.executable, "-m", "vos_service.cli", *args], env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-sec")
    pki = Pki(d)
    srv = pki.issue("server", server=True)
    tokens = d / "tokens.json"
    tokens.write_text(json.dumps({"identities": [
        {"name": "cam", "roles": ["camera"], "token_sha256": hash_token(CAM), "streams": ["cam-*"]},
        {"name": "op", "roles": ["operator"], "token_sha256": hash_token(OP)},
        {"name": "viewer", "roles": ["viewer"], "token_sha256": hash_token(VIEWER)}]}))
    env = {"VOS_AUTH__TOKENS_FILE": str(tokens), "VOS_SERVER__TLS_CERT": str(srv.cert),
           "VOS_SERVER__TLS_KEY": str(srv.key)}  # configured through the environment
    with ServerProcess(env=env) as proc:
        yield proc, pki


def test_stream_with_flags_prompt_and_watch_with_environment(server):
    proc, pki = server
    video = str(VIDEOS / "01_dog.mp4")
    ok = cli("stream", video, "--server", proc.target, "--stream-id", "cam-1", "--point", "640,360",
             "--max-frames", "4", "--token", CAM, "--tls-ca", str(pki.ca))
    assert ok.returncode == 0, ok.stderr
    refused = cli("stream", video, "--server", proc.target, "--stream-id", "cam-2", "--point", "640,360",
                  "--max-frames", "2", "--tls-ca", str(pki.ca))
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr

    tls = {"VOS_TLS_CA": str(pki.ca), "VOS_SERVER": proc.target}
    prompt = ["prompt", "--stream-id", "cam-1", "--obj-id", "2", "--point", "100,100"]
    # The stream has ended: an authenticated operator gets past auth to NOT_FOUND.
    assert "NOT_FOUND" in cli(*prompt, env={**tls, "VOS_TOKEN": OP}).stderr
    assert "PERMISSION_DENIED" in cli(*prompt, env={**tls, "VOS_TOKEN": VIEWER}).stderr
    assert "UNAUTHENTICATED" in cli(*prompt, env=tls).stderr

    watch = cli("watch", "cam-1", "--from-start", "--count", "4", env={"VOS_REDIS_URL": proc.redis_url})
    assert watch.returncode == 0 and len(watch.stdout.strip().splitlines()) == 4, watch.stderr
    assert cli("watch", "cam-1", "--count", "1").returncode == 2  # no URL given


def test_serve_refuses_a_public_address_without_identities():
    out = cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert out.returncode == 2 and "not a loopback address" in out.stderr
