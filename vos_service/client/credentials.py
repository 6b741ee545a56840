"""What a client presents: a bearer token and/or TLS (server CA, optional client certificate).

The token travels as `authorization: Bearer <token>` metadata on every call, added by a
channel interceptor, so it works on a TLS channel and on a plain loopback one alike (gRPC's
own call credentials refuse insecure channels). From the environment: VOS_TOKEN, VOS_TLS_CA,
VOS_TLS_CERT, VOS_TLS_KEY (the CLI's --token / --tls-* flags win over them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import grpc


@dataclass(frozen=True)
class Credentials:
    token: Optional[str] = None
    tls_ca: Optional[Path] = None  # PEM CA that signed the server's certificate (TLS when set)
    tls_cert: Optional[Path] = None  # PEM client certificate (mTLS), with tls_key
    tls_key: Optional[Path] = None
    server_name: Optional[str] = None  # the name the server's certificate must carry, if not the target's host

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None or self.tls_cert is not None

    @staticmethod
    def from_env(token: Optional[str] = None, tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None) -> "Credentials":
        """Arguments (e.g. CLI flags) first, then VOS_TOKEN / VOS_TLS_CA / VOS_TLS_CERT / VOS_TLS_KEY."""
        def pick(value: Optional[str], env: str) -> Optional[str]:
            return value or os.environ.get(env) or None

        path = lambda v: Path(v) if v else None  # noqa: E731
        return Credentials(pick(token, "VOS_TOKEN"), path(pick(tls_ca, "VOS_TLS_CA")),
                           path(pick(tls_cert, "VOS_TLS_CERT")), path(pick(tls_key, "VOS_TLS_KEY")))

    def channel(self, target: str, options: list[tuple[str, object]]) -> grpc.aio.Channel:
        interceptors = bearer_interceptors(self.token) if self.token else None
        if not self.tls:
            return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
        read = lambda p: Path(p).read_bytes() if p else None  # noqa: E731
        creds = grpc.ssl_channel_credentials(read(self.tls_ca), read(self.tls_key), read(self.tls_cert))
        if self.server_name:
            options = options + [("grpc.ssl_target_name_override", self.server_name)]
        return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)


def _with_token(d: grpc.aio.ClientCallDetails, metadata: tuple) -> grpc.aio.ClientCallDetails:
    return grpc.aio.ClientCallDetails(d.method, d.timeout, tuple(d.metadata or ()) + metadata, d.credentials,
                                      d.wait_for_ready)


# Two classes, not one with both bases: grpc.aio files each interceptor under the first kind it
# is an instance of (an if/elif chain), so a combined class would never see streaming calls.
class _UnaryToken(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, metadata: tuple) -> None:
        self._metadata = metadata

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(_with_token(client_call_details, self._metadata), request)


class _StreamToken(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, metadata: tuple) -> None:
        self._metadata = metadata

    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(_with_token(client_call_details, self._metadata), request_iterator)


def bearer_interceptors(token: str) -> list:
    metadata = (("authorization", f"Bearer {token}"),)
    return [_UnaryToken(metadata), _StreamToken(metadata)]
