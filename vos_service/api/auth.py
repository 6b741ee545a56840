"""Who may do what: identities from bearer tokens or client certificates, roles, per-identity quotas.

Roles (DESIGN: camera / operator / viewer / admin):

    camera    StreamFrames for stream ids matching its patterns (it owns the streams it opens)
    viewer    ListStreams, GetStream
    operator  what a viewer may, plus AddPrompt, RemoveObject and CloseStream on any stream
    admin     everything, any stream id, no quotas

An identity comes from `authorization: Bearer <token>` metadata (the token file keeps only
sha256 digests: tokens are 32 random bytes, so a plain digest is as good as a slow hash and
lets the lookup be a dict) or from the subject CN of a verified TLS client certificate. With
no identity configured at all, auth is off and every caller is ANONYMOUS with every role:
the zero-setup laptop default, allowed only on a loopback address (config refuses otherwise).

Health checking and reflection stay open (load balancers probe without credentials; the API
schema is public in protos/).
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..config import AuthSettings, IdentitySpec, SettingsError
from ..engine.errors import EngineError

TOKEN_PREFIX = "vos_"  # tells a token from other secrets in logs and config files


class UnauthenticatedError(EngineError, PermissionError):
    """No credentials, or ones that name nobody (UNAUTHENTICATED)."""


class PermissionDeniedError(EngineError, PermissionError):
    """A known identity without the role, or another camera's stream (PERMISSION_DENIED)."""


class Role(str, enum.Enum):
    CAMERA = "camera"
    OPERATOR = "operator"
    VIEWER = "viewer"
    ADMIN = "admin"


class Permission(str, enum.Enum):
    STREAM = "stream"  # open a stream and send its frames
    READ = "read"  # list streams, stream info
    PROMPT = "prompt"  # add or correct objects, remove them
    CLOSE = "close"  # close any stream


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.CAMERA: frozenset({Permission.STREAM}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.PROMPT, Permission.CLOSE}),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True)
class Quota:
    """Per identity; None = only the service-wide limits apply."""

    max_streams: Optional[int] = None  # streams open at once
    max_objects: Optional[int] = None  # objects per stream it opens
    max_fps: Optional[float] = None  # frames per second over all its streams (live: over it are dropped)


@dataclass(frozen=True)
class Identity:
    name: str
    roles: frozenset[Role]
    streams: tuple[str, ...] = ("*",)  # fnmatch patterns of the stream ids a camera may open
    quota: Quota = field(default_factory=Quota)

    def may(self, permission: Permission) -> bool:
        return any(permission in GRANTS[r] for r in self.roles)

    def may_stream(self, stream_id: str) -> bool:
        return Role.ADMIN in self.roles or any(fnmatch.fnmatchcase(stream_id, p) for p in self.streams)


ANONYMOUS = Identity("anonymous", frozenset(Role))


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def identity_of(spec: IdentitySpec, auth: AuthSettings) -> Identity:
    """The identity a spec describes; its own quotas, else the defaults (which spare admins)."""
    roles = frozenset(Role(r) for r in spec.roles)
    admin = Role.ADMIN in roles
    quota = Quota(spec.max_streams if spec.max_streams or admin else auth.default_max_streams, spec.max_objects,
                  spec.max_fps if spec.max_fps or admin else auth.default_max_fps)
    return Identity(spec.name, roles, tuple(spec.streams), quota)


class Authenticator:
    """Credentials -> Identity; Identity x permission x stream -> allowed or an error."""

    def __init__(self, specs: Sequence[IdentitySpec], auth: AuthSettings = AuthSettings()) -> None:
        self.enabled = bool(specs)
        self._by_digest: dict[str, Identity] = {}
        self._by_cn: dict[str, Identity] = {}
        for spec in specs:
            ident = identity_of(spec, auth)
            if spec.token_sha256:
                self._by_digest[spec.token_sha256.lower()] = ident
            if spec.cert_cn:
                self._by_cn[spec.cert_cn] = ident
        self._rates: dict[str, _TokenBucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> "Authenticator":
        """The token file's identities and those inline in the settings (VOS_AUTH__IDENTITIES)."""
        file_specs = load_token_file(Path(auth.tokens_file)) if auth.tokens_file else []
        return cls(file_specs + list(auth.identities), auth)

    def identify(self, metadata: Iterable[tuple[str, object]], cert_cns: Sequence[bytes] = ()) -> Identity:
        """The caller's identity (raises UnauthenticatedError). cert_cns: the verified peer's CNs."""
        if not self.enabled:
            return ANONYMOUS
        for key, value in metadata:
            if key == "authorization":
                text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                scheme, _, token = text.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise UnauthenticatedError("authorization metadata must be 'Bearer <token>'")
                ident = self._lookup(hash_token(token.strip()))
                if ident is None:
                    raise UnauthenticatedError("unknown token")
                return ident
        for cn in cert_cns:
            ident = self._by_cn.get(cn.decode("utf-8", "replace"))
            if ident is not None:
                return ident
        if cert_cns:
            raise UnauthenticatedError("the client certificate maps to no identity")
        raise UnauthenticatedError("credentials required: 'authorization: Bearer <token>' metadata "
                                   "or a client certificate")

    def _lookup(self, digest: str) -> Optional[Identity]:
        # compare_digest over every entry: the time taken does not tell how much of a guess matched.
        found = None
        for known, ident in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = ident
        return found

    @staticmethod
    def authorize(identity: Identity, permission: Permission, stream_id: Optional[str] = None) -> None:
        if not identity.may(permission):
            roles = ", ".join(sorted(r.value for r in identity.roles)) or "none"
            raise PermissionDeniedError(f"{identity.name!r} (roles: {roles}) may not {permission.value}")
        if permission is Permission.STREAM and stream_id is not None and not identity.may_stream(stream_id):
            raise PermissionDeniedError(f"{identity.name!r} may not stream to {stream_id!r}")

    def take_frame(self, identity: Identity) -> bool:
        """Count one frame against the identity's max_fps; False: over the rate."""
        rate = identity.quota.max_fps
        if rate is None:
            return True
        with self._lock:
            bucket = self._rates.get(identity.name)
            if bucket is None:
                bucket = self._rates[identity.name] = _TokenBucket(rate, burst=max(1.0, rate))
        return bucket.take()


class _TokenBucket:
    """`rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


def load_token_file(path: Path) -> list[IdentitySpec]:
    """A JSON token file: {"identities": [{"name", "roles", "token_sha256", ...}, ...]}, each entry
    checked like the settings (types, ranges, unknown keys refused)."""
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("identities"), list):
            raise ValueError('expected {"identities": [...]}')
        return [IdentitySpec.model_validate(e) for e in data["identities"]]
    except (OSError, ValueError) as e:  # pydantic's ValidationError is a ValueError
        raise SettingsError(f"token file {path}: {e}") from None
