"""Three replicas behind a real HAProxy (the shipped deploy/haproxy/haproxy.cfg, pointed at
loopback ports) and one real Redis: every call of a stream reaches the replica that holds it."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import grpc
import pytest

from tests.api.harness import SMALL, SMALL_CLICK, read_until
from tests.conftest import REPO
from tests.fuzz.server import ServerProcess
from vos_service.client import Opened, Result, VosClient
from vos_service.publish.embedded import EmbeddedRedis

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SHIPPED = REPO / "deploy" / "haproxy" / "haproxy.cfg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_config(replicas: list[ServerProcess], port: int) -> str:
    """The shipped config with its three servers and the frontend on this machine's ports."""
    text = SHIPPED.read_text().replace("bind :50051", f"bind 127.0.0.1:{port}")
    for i, r in enumerate(replicas):
        grpc_port = r.target.rsplit(":", 1)[1]
        text = re.sub(rf"server vos-{i} vos-{i}:50051 check", f"server vos-{i} 127.0.0.1:{grpc_port} check", text)
    assert text.count("127.0.0.1:") == 4, text
    return text


def test_the_shipped_config_is_valid():
    out = subprocess.run([HAPROXY, "-c", "-f", str(SHIPPED)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Configuration file is valid" in out.stdout + out.stderr, out.stderr


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    d = tmp_path_factory.mktemp("fleet")
    with EmbeddedRedis() as redis_server:
        replicas = [ServerProcess(env={"VOS_SERVER__REPLICA_ID": f"r{i}", "VOS_REDIS__URL": redis_server.url},
                                  args=("--metrics-port", "0")) for i in range(3)]
        started = []
        try:
            for r in replicas:
                started.append(r.__enter__())
            port = free_port()
            cfg = d / "haproxy.cfg"
            cfg.write_text(local_config(started, port))
            proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
            try:
                _wait_healthy(started, port)
                yield started, f"127.0.0.1:{port}"
            finally:
                proxy.terminate()
                proxy.wait(10)
        finally:
            for r in started:
                r.__exit__()


def _wait_healthy(replicas, port: int) -> None:
    for r in replicas:
        assert urllib.request.urlopen(f"http://127.0.0.1:{r.metrics_port}/healthz", timeout=10).read() == b"SERVING\n"
    time.sleep(3)  # HAProxy's checks (every 1 s, fall/rise 2) have run: a failing one would show by now


def test_thirty_streams_spread_and_every_call_reaches_its_replica(fleet):
    replicas, proxy = fleet

    async def scenario():
        async with VosClient(proxy) as c:
            held = {}
            for i in range(30):
                sid = f"cam-{i}"
                call = await c.open_stream(sid, 640, 360, mode="lossless")
                assert isinstance(await call.read(), Opened)
                held[sid] = (call, await call.replica())
                await call.send(0, SMALL[i % len(SMALL)])
                await read_until(call, 1, Result)
            assert {r for _, r in held.values()} == {"r0", "r1", "r2"}  # spread over all replicas
            for sid, (call, replica) in held.items():
                assert (await c.get_stream(sid)).replica == replica
                results = await c.add_prompt(sid, 1, SMALL_CLICK)  # NOT_FOUND if it went elsewhere
                assert results[0].frame_index == 0
            # a reconnect with the same id lands on the same replica
            for sid in ("cam-3", "cam-17"):
                call, replica = held[sid]
                call.cancel()
                again = await c.open_stream(sid, 640, 360)
                assert isinstance(await again.read(), Opened) and await again.replica() == replica
                held[sid] = (again, replica)
            for sid, (call, _) in held.items():
                await c.close_stream(sid)
            counts = {}
            for r in replicas:  # each replica answers ListStreams for itself only
                async with VosClient(r.target) as direct:
                    counts[r] = await direct.list_streams()
            assert all(v == [] for v in counts.values())

    asyncio.run(asyncio.wait_for(scenario(), 240))


def test_a_routing_header_naming_another_stream_is_refused(fleet):
    replicas, proxy = fleet

    async def scenario():
        async with VosClient(replicas[0].target) as c:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await c.stub.GetStream(__import__("vos_service.api.gen.vos.v1.vos_pb2", fromlist=["x"])
                                       .GetStreamRequest(stream_id="a"), metadata=(("x-vos-stream-id", "b"),))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    asyncio.run(scenario())
