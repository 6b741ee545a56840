"""Three replicas behind a real HAProxy (the shipped deploy/haproxy/haproxy.cfg, pointed at
loopback ports) and one real Redis: every call of a stream reaches the replica that holds it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import grpc
import pytest

from tests.api.harness import SMALL, SMALL_CLICK, read_until
from tests.conftest import REPO
from tests.fuzz.server import ServerProcess
from vos_service.client import Backoff, Opened, Reconnecting, Result, VosClient
from vos_service.publish.embedded import EmbeddedRedis
from vos_service.publish.schema import EVENTS_KEY, EventMessage, MaskletMessage, masklets_key

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SHIPPED = REPO / "deploy" / "haproxy" / "haproxy.cfg"


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """n distinct free ports (all bound at once while picking, so none is handed out twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def local_config(replicas: list[ServerProcess], port: int, console_port: int) -> str:
    """The shipped config with its three servers and the frontend on this machine's ports."""
    text = SHIPPED.read_text().replace("bind :50051", f"bind 127.0.0.1:{port}")
    text = text.replace("bind :8080", f"bind 127.0.0.1:{console_port}")
    for i, r in enumerate(replicas):
        grpc_port = r.target.rsplit(":", 1)[1]
        text = re.sub(rf"server vos-{i} vos-{i}:50051 check", f"server vos-{i} 127.0.0.1:{grpc_port} check", text)
        console = r.console_url.split("//")[1].rstrip("/")
        text = re.sub(rf"server vos-{i} vos-{i}:8080 check", f"server vos-{i} {console} check",
                      text)
    assert text.count("127.0.0.1:") == 8, text
    return text


def test_the_shipped_config_is_valid():
    out = subprocess.run([HAPROXY, "-c", "-f", str(SHIPPED)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Configuration file is valid" in out.stdout + out.stderr, out.stderr


class Fleet:
    """Replicas + the proxy in front of them; unpacks as (replicas, proxy address)."""

    def __init__(self, replicas: list[ServerProcess], address: str, cfg) -> None:
        self.replicas, self.address, self.cfg = replicas, address, cfg
        self.proxy = self._start()

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen([HAPROXY, "-db", "-f", str(self.cfg)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT)

    def __iter__(self):
        return iter((self.replicas, self.address))

    def stop_proxy(self, kill: bool = False) -> None:
        (self.proxy.kill if kill else self.proxy.terminate)()
        self.proxy.wait(10)

    def restart_proxy(self) -> None:
        """kill -9 of HAProxy and a fresh one on the same port (its stick table starts empty)."""
        self.stop_proxy(kill=True)
        self.proxy = self._start()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    d = tmp_path_factory.mktemp("fleet")
    with EmbeddedRedis() as redis_server:
        env = {"VOS_REDIS__URL": redis_server.url, "VOS_STREAMS__RESUME_FROM_REDIS": "true",
               "VOS_STREAMS__LEASE_TTL_S": "2"}
        started = []
        try:
            for i in range(3):
                # Fixed ports (a replica restarted after its death is the same server line in
                # HAProxy's config), picked just before its start so nothing else takes them.
                grpc_port, console_port = free_ports(2)
                r = ServerProcess(env=env | {"VOS_SERVER__REPLICA_ID": f"r{i}"},
                                  args=("--metrics-port", "0", "--port", str(grpc_port),
                                        "--console-port", str(console_port)))
                started.append(r.__enter__())
            port, console_port = free_ports(2)
            cfg = d / "haproxy.cfg"
            cfg.write_text(local_config(started, port, console_port))
            fleet = Fleet(started, f"127.0.0.1:{port}", cfg)
            fleet.console = f"127.0.0.1:{console_port}"
            try:
                _wait_healthy(started, port)
                yield fleet
            finally:
                fleet.stop_proxy()
        finally:
            for r in started:
                r.__exit__()


def _wait_healthy(replicas, port: int) -> None:
    for r in replicas:
        assert urllib.request.urlopen(f"http://127.0.0.1:{r.metrics_port}/healthz", timeout=10).read() == b"SERVING\n"
    time.sleep(3)  # HAProxy's checks (every 1 s, fall/rise 2) have run: a failing one would show by now


async def open_streams(c: VosClient, prefix: str, n: int, first_frame: bool = True) -> dict:
    """Open n lossless streams through `c`: id -> (call, replica). With first_frame, each has
    sent frame 0 and got its result."""
    held = {}
    for i in range(n):
        call = await c.open_stream(f"{prefix}-{i}", 640, 360, mode="lossless")
        assert isinstance(await call.read(), Opened)
        held[f"{prefix}-{i}"] = (call, await call.replica())
        if first_frame:
            await call.send(0, SMALL[i % len(SMALL)])
            await read_until(call, 1, Result)
    return held


def test_thirty_streams_spread_and_every_call_reaches_its_replica(fleet):
    replicas, proxy = fleet

    async def scenario():
        async with VosClient(proxy) as c:
            held = await open_streams(c, "cam", 30)
            assert {r for _, r in held.values()} == {"r0", "r1", "r2"}  # spread over all replicas
            for sid, (_call, replica) in held.items():
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
            for sid in held:
                await c.close_stream(sid)
            counts = {}
            for r in replicas:  # each replica answers ListStreams for itself only
                async with VosClient(r.target) as direct:
                    counts[r] = await direct.list_streams()
            assert all(v == [] for v in counts.values())

    asyncio.run(asyncio.wait_for(scenario(), 240))


def test_a_streams_console_page_and_websocket_reach_its_replica(fleet):
    """http://PROXY:8080/?stream=ID: the WebSocket of that page lands on the replica holding ID
    (the console's first `streams` message lists only that replica's streams)."""
    import aiohttp

    replicas, proxy = fleet

    async def scenario():
        async with VosClient(proxy) as c, aiohttp.ClientSession() as http:
            calls = await open_streams(c, "con", 6, first_frame=False)
            assert len({r for _, r in calls.values()}) > 1
            for sid, (_, replica) in calls.items():
                page = await http.get(f"http://{fleet.console}/?stream={sid}")
                assert page.status == 200 and "console.js" in await page.text()
                async with http.ws_connect(f"http://{fleet.console}/ws?stream={sid}") as ws:
                    while (msg := await ws.receive_json(timeout=30))["type"] != "streams":
                        pass
                listed = {row["stream_id"] for row in msg["streams"]}
                mates = {s for s, (_, r) in calls.items() if r == replica}
                assert listed & set(calls) == mates, (sid, replica, listed)  # exactly its replica's streams
            for sid in calls:
                await c.close_stream(sid)

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


def _stream_through(fleet, stream_id: str, disrupt) -> tuple[list, list, float]:
    """Stream FRAMES_TOTAL frames with reconnect on; call disrupt(client, stream_id) after KILL_AFTER
    results. Returns (timed events, results of revision 0, monotonic time of the disruption)."""
    events, at = [], []

    async def frames():
        for i in range(FRAMES_TOTAL):
            yield i, SMALL[i % len(SMALL)]
            await asyncio.sleep(0.05)

    async def scenario():
        async with VosClient(fleet.address) as c:
            async for ev in c.stream(stream_id, frames(), mode="lossless", initial_prompts=[(1, SMALL_CLICK)],
                                     reconnect=Backoff(initial_s=0.2, max_s=1.0)):
                events.append((time.monotonic(), ev))
                if isinstance(ev, Result) and not at and sum(isinstance(e, Result) for _, e in events) == KILL_AFTER:
                    await disrupt(c, stream_id)
                    at.append(time.monotonic())

    asyncio.run(asyncio.wait_for(scenario(), 240))
    return events, [(t, e) for t, e in events if isinstance(e, Result) and e.revision == 0], at[0]


def test_a_proxy_restart_costs_a_stream_one_reconnect(fleet):
    async def restart(c, sid):
        fleet.restart_proxy()

    events, results, at = _stream_through(fleet, "px-1", restart)
    retries = [e for _, e in events if isinstance(e, Reconnecting)]
    assert retries and results[-1][1].frame_index == FRAMES_TOTAL - 1
    after = [(t, e) for t, e in results if t > at]
    outage = after[0][0] - at
    # No longer than the backoff it took plus one frame's work (generous: a loaded 2-core machine).
    assert outage < sum(e.delay_s for e in retries) + 15, (outage, retries)
    assert all(any(m.obj_id == 1 for m in e.masklets) for _, e in after)  # same replica or resumed: kept
    lost = {i for e in retries for i in e.unanswered}
    assert set(range(FRAMES_TOTAL)) - {e.frame_index for _, e in results} == lost
    print(f"proxy restart: first result {outage:.2f} s later, {len(retries)} reconnects, {len(lost)} frames lost")


# The kill test runs last in this module: it leaves the fleet one replica short.
KILL_AFTER = 6     # results before the kill
FRAMES_TOTAL = 40


def test_kill_9_of_a_replica_mid_stream_the_stream_resumes_on_another(fleet):
    """Failover: the camera's call is cut, the client backs off and re-opens through the proxy,
    another replica seeds the object from Redis' newest masklet, frame indices go on, and Redis
    holds every frame index at most once per revision, with no gap beyond those in flight."""
    replicas, _ = fleet
    by_name = {f"r{i}": r for i, r in enumerate(replicas)}
    killed = {}

    async def kill_owner(c, sid):
        killed["name"] = (await c.get_stream(sid)).replica
        other = next(r for n, r in by_name.items() if n != killed["name"])
        async with VosClient(other.target) as direct:  # past the proxy: the lease keeps a second owner out
            call = await direct.open_stream(sid, 640, 360)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call.read()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "owned by replica" in err.value.details()
        os.kill(by_name[killed["name"]].proc.pid, signal.SIGKILL)

    events, results, at = _stream_through(fleet, "fo-1", kill_owner)
    retries = [e for _, e in events if isinstance(e, Reconnecting)]
    assert retries, [type(e).__name__ for _, e in events]
    after = [(t, e) for t, e in results if t > at]
    assert after and after[-1][1].frame_index == FRAMES_TOTAL - 1  # the stream went on to its end
    failover_s = after[0][0] - at
    assert failover_s < 30, failover_s  # generous bound on a loaded 2-core machine; README states the measured value
    # the object was restored from Redis: the resumed stream tracks object 1 from its first frame
    assert all(any(m.obj_id == 1 for m in e.masklets) for _, e in after)
    indices = [e.frame_index for _, e in results]
    assert indices == sorted(set(indices)), indices  # each frame answered at most once, in order
    in_flight = {i for e in retries for i in e.unanswered}  # sent on the dead call, never answered
    assert set(range(FRAMES_TOTAL)) - set(indices) == in_flight  # lost: exactly the frames in flight
    gaps = [b - a for a, b in zip(indices, indices[1:])]
    assert max(gaps) <= 1 + len(in_flight), gaps
    import redis as redis_lib

    r = redis_lib.Redis.from_url(next(s for s in replicas if s.alive).redis_url)
    stored = [MaskletMessage.from_fields(f) for _, f in r.xrange(masklets_key("fo-1"))]
    pairs = [(m.frame_index, m.revision) for m in stored]
    assert len(pairs) == len(set(pairs)), pairs  # every frame index exactly once per revision
    # the prompt journal: the first click, in full, on the fleet's event stream
    added = [e for e in (EventMessage.from_fields(f) for _, f in r.xrange(EVENTS_KEY))
             if e.stream_id == "fo-1" and e.type.value == "object_added"]
    assert added[0].obj_id == 1 and added[0].detail["points"] == SMALL_CLICK.points.tolist() \
        and added[0].detail["labels"] == [1]
    firsts = sorted({i for i, rev in pairs if rev == 0})
    # Redis may also miss what the dead replica segmented but had not yet published: its publish buffer.
    assert firsts[-1] == FRAMES_TOTAL - 1 and set(firsts) <= set(range(FRAMES_TOTAL))
    assert max(b - a for a, b in zip(firsts, firsts[1:])) <= 1 + len(in_flight) + 4, firsts
    print(f"failover: replica {killed['name']} killed after {KILL_AFTER} results; first result on the new "
          f"replica after {failover_s:.2f} s; {len(retries)} reconnect attempts; frames lost (in flight) "
          f"{len(in_flight)}; Redis holds {len(firsts)} of {FRAMES_TOTAL} frames")


def test_a_replica_that_comes_back_does_not_steal_live_streams(fleet):
    """After the kill above: streams opened while r0 was dead stay where they are once r0 is
    back (the stick table pins them; r0 could not take their leases anyway), and r0 takes new ones."""
    replicas, proxy = fleet
    assert not replicas[0].alive

    async def scenario():
        async with VosClient(proxy) as c:
            held = await open_streams(c, "live", 12)
            assert {r for _, r in held.values()} <= {"r1", "r2"}
            back = ServerProcess(env=replicas[0].env, args=replicas[0].args)
            replicas[0] = await asyncio.to_thread(back.__enter__)  # the fixture's teardown stops it
            await asyncio.to_thread(_wait_healthy, [replicas[0]], 0)
            for sid, (call, replica) in held.items():
                assert (await c.get_stream(sid)).replica == replica  # still routed to its owner
                await call.send(1, SMALL[0])
                assert (await read_until(call, 1, Result))[-1].frame_index == 1
                assert (await c.add_prompt(sid, 1, SMALL_CLICK))[0].frame_index == 1
            async with VosClient(replicas[0].target) as direct:
                assert await direct.list_streams() == []  # nothing moved to the returned replica
            fresh = await open_streams(c, "new", 12)
            assert "r0" in {r for _, r in fresh.values()}  # but it is back in rotation for new streams
            for sid in list(held) + list(fresh):
                await c.close_stream(sid)

    asyncio.run(asyncio.wait_for(scenario(), 300))
