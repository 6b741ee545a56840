"""Command-line connection options shared by the client commands (stream, prompt).

Each has an environment variable (VOS_SERVER, VOS_TOKEN, VOS_TLS_CA, VOS_TLS_CERT,
VOS_TLS_KEY): a camera box or an operator's shell sets them once; a flag wins over them.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # grpc: only once a command connects
    from ..client.credentials import Credentials


def default_server() -> str:
    """$VOS_SERVER, else the address `serve` binds by default (settings server.host, server.port)."""
    from ..config import setting_field

    return os.environ.get("VOS_SERVER") or f"{setting_field('server.host')[1]}:{setting_field('server.port')[1]}"


def add_connection_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--server", default=default_server(),
                   help="host:port of `vos-service serve` (env VOS_SERVER; default %(default)s)")
    g.add_argument("--token", help="bearer token of this client's identity (env VOS_TOKEN; default none)")
    g.add_argument("--tls-ca", help="PEM CA of the server's certificate: connect over TLS "
                                    "(env VOS_TLS_CA; default none: plain gRPC)")
    g.add_argument("--tls-cert", help="PEM client certificate for mutual TLS (env VOS_TLS_CERT; default none)")
    g.add_argument("--tls-key", help="PEM key of --tls-cert (env VOS_TLS_KEY; default none)")
    g.add_argument("--tls-server-name", help="the name in the server's certificate (default: --server's host)")


def credentials_from_args(args: argparse.Namespace) -> Credentials:
    from ..client.credentials import Credentials

    creds = Credentials.from_env(args.token, args.tls_ca, args.tls_cert, args.tls_key)
    if args.tls_server_name:
        creds = Credentials(creds.token, creds.tls_ca, creds.tls_cert, creds.tls_key, args.tls_server_name)
    return creds
