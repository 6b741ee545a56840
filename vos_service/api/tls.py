"""TLS for the gRPC port and the metrics endpoint, from PEM files named in ServerSettings."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Optional

import grpc

from ..config import ServerSettings, SettingsError


def _read(path: Optional[str], what: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise SettingsError(f"cannot read {what} {path}: {e}") from None


def server_credentials(cfg: ServerSettings) -> grpc.ServerCredentials:
    """Server certificate + key; with tls_client_ca, clients must present a certificate it signed."""
    ca = _read(cfg.tls_client_ca, "server.tls_client_ca")
    return grpc.ssl_server_credentials([(_read(cfg.tls_key, "server.tls_key"), _read(cfg.tls_cert, "server.tls_cert"))],
                                       root_certificates=ca, require_client_auth=ca is not None)


def metrics_ssl_context(cfg: ServerSettings) -> Optional[ssl.SSLContext]:
    """An SSL context for /metrics (None: plain HTTP), requiring client certificates like gRPC does."""
    if not cfg.metrics_tls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    assert cfg.tls_cert and cfg.tls_key  # ServerSettings: metrics_tls needs both
    ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    if cfg.tls_client_ca:
        ctx.load_verify_locations(cfg.tls_client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
