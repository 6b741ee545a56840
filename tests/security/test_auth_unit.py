"""Identities, tokens, roles and quotas without transport."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from vos_service.api.auth import (
    ANONYMOUS,
    Authenticator,
    Permission,
    PermissionDeniedError,
    Role,
    UnauthenticatedError,
    hash_token,
    load_token_file,
    new_token,
)
from vos_service.config import AuthSettings, IdentitySpec, SettingsError


def spec(name, roles, token, **kw) -> IdentitySpec:
    return IdentitySpec(name=name, roles=roles, token_sha256=hash_token(token), **kw)


def test_tokens_identify_and_roles_grant():
    t_cam, t_view = new_token(), new_token()
    a = Authenticator([spec("cam", ["camera"], t_cam, streams=["cam-*"]), spec("v", ["viewer"], t_view)])
    cam = a.identify([("authorization", f"Bearer {t_cam}")])
    assert cam.name == "cam" and cam.roles == {Role.CAMERA}
    a.authorize(cam, Permission.STREAM, "cam-7")
    for perm, sid in ((Permission.STREAM, "door"), (Permission.READ, None), (Permission.PROMPT, None)):
        with pytest.raises(PermissionDeniedError):
            a.authorize(cam, perm, sid)
    for md in ([], [("authorization", "Basic abc")], [("authorization", "Bearer ")],
               [("authorization", "Bearer " + new_token())]):
        with pytest.raises(UnauthenticatedError):
            a.identify(md)
    with pytest.raises(UnauthenticatedError, match="maps to no identity"):
        a.identify([], cert_cns=[b"someone"])
    assert Authenticator([]).identify([]) is ANONYMOUS and not Authenticator([]).enabled


def test_default_quotas_spare_admins_and_yield_to_explicit_ones():
    t = [new_token() for _ in range(3)]
    a = Authenticator([spec("c", ["camera"], t[0]), spec("c5", ["camera"], t[1], max_streams=5),
                       spec("adm", ["admin"], t[2])], AuthSettings(default_max_streams=4, default_max_fps=15))
    ident = {i.name: i for i in (a.identify([("authorization", f"Bearer {x}")]) for x in t)}
    assert (ident["c"].quota.max_streams, ident["c"].quota.max_fps) == (4, 15)
    assert ident["c5"].quota.max_streams == 5
    assert (ident["adm"].quota.max_streams, ident["adm"].quota.max_fps) == (None, None)


def test_identity_specs_are_validated(tmp_path):
    with pytest.raises(ValueError, match="token_sha256 or cert_cn"):
        IdentitySpec(name="x", roles=["viewer"])
    with pytest.raises(ValueError):
        IdentitySpec(name="x", roles=["root"], cert_cn="x")
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"identities": [{"name": "x", "roles": ["viewer"], "cert_cn": "x", "colour": 1}]}))
    with pytest.raises(SettingsError, match="colour"):
        load_token_file(bad)


def test_auth_token_command_stores_only_the_digest(tmp_path):
    f = tmp_path / "tokens.json"
    run = lambda *a: subprocess.run([sys.executable, "-m", "vos_service.cli", "auth", "token", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    out = run("cam-1", "--role", "camera", "--stream", "cam-1*", "--max-fps", "10", "--file", str(f))
    token = out.stdout.strip()
    assert out.returncode == 0 and token.startswith("vos_")
    assert token not in f.read_text() and stat.S_IMODE(f.stat().st_mode) == 0o600
    (entry,) = load_token_file(f)
    assert entry.token_sha256 == hash_token(token) and entry.streams == ["cam-1*"] and entry.max_fps == 10
    assert run("cam-1", "--role", "viewer", "--file", str(f)).returncode == 2  # the name is taken
