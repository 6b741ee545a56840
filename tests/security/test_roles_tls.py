"""Every role allowed and refused over real gRPC with real TLS handshakes (certificates made here)."""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

from tests.api.harness import SMALL, SMALL_CLICK, collect_status, read_until, run, serving, status_of
from tests.security.certs import Pki
from vos_service.api.auth import hash_token, new_token
from vos_service.client import Credentials, Dropped, Opened, Result, VosClient, encode_frame
from vos_service.io.decode import FrameFormat

W, H = 640, 360
TOKENS = {name: new_token() for name in ("cam", "cam2", "op", "viewer", "admin", "slowcam")}


def identities() -> list[dict]:
    def ident(name, roles, **kw):
        return {"name": name, "roles": roles, "token_sha256": hash_token(TOKENS[name]), **kw}
    return [ident("cam", ["camera"], streams=["cam-*"], max_streams=2),
            ident("cam2", ["camera"], streams=["cam-*"], max_objects=1),
            ident("op", ["operator"]), ident("viewer", ["viewer"]), ident("admin", ["admin"]),
            ident("slowcam", ["camera"], max_fps=2.0),
            {"name": "op-by-cert", "roles": ["operator"], "cert_cn": "op-cert"}]


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> tuple[Pki, dict]:
    pki = Pki(tmp_path_factory.mktemp("pki"))
    return pki, {"server": pki.issue("server", server=True), "op": pki.issue("op-cert"),
                 "stranger": pki.issue("stranger")}


def tls_settings(pki, mtls: bool = False) -> dict:
    p, pairs = pki
    out = {"server.tls_cert": str(pairs["server"].cert), "server.tls_key": str(pairs["server"].key),
           "auth.identities": identities()}
    if mtls:
        out["server.tls_client_ca"] = str(p.ca)
    return out


def creds(pki, token=None, cert=None) -> Credentials:
    p, pairs = pki
    pair = pairs.get(cert) if cert else None
    return Credentials(token=token, tls_ca=p.ca, tls_cert=pair and pair.cert, tls_key=pair and pair.key)


async def open_code(client: VosClient, sid: str, **kw) -> tuple[grpc.StatusCode, object]:
    call = await client.open_stream(sid, W, H, **kw)
    try:
        first = await call.read()
    except grpc.aio.AioRpcError as e:
        return e.code(), None
    return (grpc.StatusCode.OK if isinstance(first, Opened) else grpc.StatusCode.UNKNOWN), call


def test_each_role_is_allowed_and_refused(pki):
    async def scenario():
        async with serving(credentials=creds(pki, TOKENS["cam"]), **tls_settings(pki)) as s:
            target = f"127.0.0.1:{s.port}"
            clients = {n: VosClient(target, credentials=creds(pki, t)) for n, t in TOKENS.items()}
            nobody = VosClient(target, credentials=creds(pki))
            forged = VosClient(target, credentials=creds(pki, new_token()))
            cam, op, viewer, admin, cam2 = (clients[n] for n in ("cam", "op", "viewer", "admin", "cam2"))
            try:
                # StreamFrames: cameras (own patterns) and admin; nobody else
                code_, call = await open_code(cam, "cam-1", mode="lossless")
                assert code_ == grpc.StatusCode.OK
                await call.send(0, SMALL[0])
                await read_until(call, 1, Result)
                assert (await open_code(cam, "lobby"))[0] == grpc.StatusCode.PERMISSION_DENIED  # outside cam-*
                assert (await open_code(op, "cam-9"))[0] == grpc.StatusCode.PERMISSION_DENIED
                assert (await open_code(viewer, "cam-9"))[0] == grpc.StatusCode.PERMISSION_DENIED
                assert (await open_code(nobody, "cam-9"))[0] == grpc.StatusCode.UNAUTHENTICATED
                assert (await open_code(forged, "cam-9"))[0] == grpc.StatusCode.UNAUTHENTICATED
                code_, adm_call = await open_code(admin, "anything")
                assert code_ == grpc.StatusCode.OK

                # reading: viewer, operator, admin; a camera only its own stream
                for c in (viewer, op, admin):
                    assert {i.stream_id for i in await c.list_streams()} == {"cam-1", "anything"}
                assert await status_of(cam.list_streams()) == grpc.StatusCode.PERMISSION_DENIED
                assert (await cam.get_stream("cam-1")).stream_id == "cam-1"
                assert await status_of(cam2.get_stream("cam-1")) == grpc.StatusCode.PERMISSION_DENIED
                assert await status_of(nobody.get_stream("cam-1")) == grpc.StatusCode.UNAUTHENTICATED

                # prompts: operator and admin only (the camera owning the stream neither)
                for c, expect in ((cam, "PERMISSION_DENIED"), (viewer, "PERMISSION_DENIED"),
                                  (nobody, "UNAUTHENTICATED"), (op, "OK"), (admin, "OK")):
                    got = await status_of(c.add_prompt("cam-1", 1, SMALL_CLICK))
                    assert got.name == expect, (c, got)
                assert await status_of(viewer.remove_object("cam-1", 1)) == grpc.StatusCode.PERMISSION_DENIED
                assert await status_of(op.remove_object("cam-1", 1)) == grpc.StatusCode.OK

                # closing: operator, admin, and a camera its own stream; not another camera's
                assert await status_of(cam2.close_stream("cam-1")) == grpc.StatusCode.PERMISSION_DENIED
                assert await status_of(viewer.close_stream("cam-1")) == grpc.StatusCode.PERMISSION_DENIED
                assert await status_of(op.close_stream("anything")) == grpc.StatusCode.OK
                assert await status_of(cam.close_stream("cam-1")) == grpc.StatusCode.OK
                assert s.metric("vos_grpc_server_handled_total", grpc_service="vos.v1.VosService",
                                grpc_method="AddPrompt", grpc_code="PERMISSION_DENIED") == 2
            finally:
                for c in (*clients.values(), nobody, forged):
                    await c.close()

    run(scenario())


def test_quotas_per_identity(pki):
    async def scenario():
        async with serving(credentials=creds(pki, TOKENS["cam"]), **tls_settings(pki)) as s:
            target = f"127.0.0.1:{s.port}"
            cam = s.client
            calls = [(await open_code(cam, f"cam-{i}"))[1] for i in range(2)]
            assert (await open_code(cam, "cam-2"))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED  # max_streams 2
            async with VosClient(target, credentials=creds(pki, TOKENS["cam2"])) as other:
                two = [(1, SMALL_CLICK), (2, SMALL_CLICK)]
                assert (await open_code(other, "cam-2", initial_prompts=two))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
                code_, call = await open_code(other, "cam-2", mode="lossless")  # another camera still gets in
                assert code_ == grpc.StatusCode.OK
                await call.send(0, SMALL[0])
                await read_until(call, 1, Result)
                async with VosClient(target, credentials=creds(pki, TOKENS["op"])) as op:
                    await op.add_prompt("cam-2", 1, SMALL_CLICK)
                    # the stream's object quota is its owner's (max_objects 1), whoever prompts
                    assert await status_of(op.add_prompt("cam-2", 2, SMALL_CLICK)) == grpc.StatusCode.RESOURCE_EXHAUSTED
                call.cancel()
            for c in calls:
                c.cancel()

            async with VosClient(target, credentials=creds(pki, TOKENS["slowcam"])) as slow:
                code_, call = await open_code(slow, "slow")  # max_fps 2, live: frames over it are dropped
                jpegs = [encode_frame(f, FrameFormat.JPEG) for f in SMALL[:8]]
                for i, data in enumerate(jpegs):  # 8 frames in far less than the 3 s 2 fps would need
                    await call.send(i, data)
                events = []
                while len([e for e in events if isinstance(e, (Result, Dropped))]) < 8:
                    events.append(await call.read())
                limited = [e for e in events if isinstance(e, Dropped) and e.reason.startswith("rate_limited")]
                assert 1 <= len(limited) <= 6, events  # a burst of 2 passes, then 2 a second
                call.cancel()

    run(scenario())


def test_mutual_tls_maps_certificates_to_identities(pki):
    async def scenario():
        async with serving(credentials=creds(pki, cert="op"), **tls_settings(pki, mtls=True)) as s:
            target = f"127.0.0.1:{s.port}"
            assert await s.client.list_streams() == []  # CN op-cert -> operator
            async with VosClient(target, credentials=creds(pki, cert="stranger")) as stranger:
                assert await status_of(stranger.list_streams()) == grpc.StatusCode.UNAUTHENTICATED
            async with VosClient(target, credentials=creds(pki, token=TOKENS["viewer"])) as no_cert:
                assert await status_of(asyncio.wait_for(no_cert.list_streams(), 20)) == grpc.StatusCode.UNAVAILABLE
            async with VosClient(target, credentials=creds(pki, token=TOKENS["viewer"], cert="stranger")) as both:
                assert await both.list_streams() == []  # a verified certificate plus a known token

    run(scenario())


def test_plaintext_client_cannot_talk_to_a_tls_server(pki):
    async def scenario():
        async with serving(credentials=creds(pki, TOKENS["viewer"]), **tls_settings(pki)) as s:
            async with VosClient(f"127.0.0.1:{s.port}", credentials=Credentials(token=TOKENS["viewer"])) as plain:
                assert await status_of(asyncio.wait_for(plain.list_streams(), 20)) == grpc.StatusCode.UNAVAILABLE
            bad_ca = Pki(Path(pki[0].dir) / "..", ca_name="other CA")  # a CA the server's cert is not from
            async with VosClient(f"127.0.0.1:{s.port}",
                                 credentials=Credentials(token=TOKENS["viewer"], tls_ca=bad_ca.ca)) as wrong:
                assert await status_of(asyncio.wait_for(wrong.list_streams(), 20)) == grpc.StatusCode.UNAVAILABLE

    run(scenario())


def test_auth_off_on_loopback_lets_everyone_in():
    """The laptop default: no identities, loopback only — every call works without credentials."""
    async def scenario():
        async with serving() as s:
            code_, call = await open_code(s.client, "any")
            assert code_ == grpc.StatusCode.OK
            assert [i.stream_id for i in await s.client.list_streams()] == ["any"]
            await s.client.close_stream("any")
            assert (await collect_status(call))[1] == grpc.StatusCode.OK

    run(scenario())


def test_metrics_endpoint_serves_only_metrics_and_can_require_client_certs(pki):
    from vos_service.api.tls import metrics_ssl_context
    from vos_service.config import Settings
    from vos_service.metrics import Metrics

    p, pairs = pki
    settings = Settings().with_overrides({**tls_settings(pki, mtls=True), "server.metrics_tls": True})
    m = Metrics()
    port = m.serve(0, "127.0.0.1", metrics_ssl_context(settings.server))
    try:
        ctx = ssl.create_default_context(cafile=str(p.ca))
        ctx.load_cert_chain(pairs["op"].cert, pairs["op"].key)
        body = urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=ctx, timeout=20).read()
        assert b"vos_frames_received_total" in body
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/admin", context=ctx, timeout=20)
        assert err.value.code == 404
        no_cert = ssl.create_default_context(cafile=str(p.ca))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
            urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=no_cert, timeout=20).read()
    finally:
        m.stop_serving()
