"""Command-line connection options shared by the client commands (stream, prompt)."""

from __future__ import annotations

import argparse
import os

from ..client.credentials import Credentials


def add_connection_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--server", default=os.environ.get("VOS_SERVER", "127.0.0.1:50051"),
                   help="host:port of `vos-service serve` (env VOS_SERVER; default %(default)s)")
    g.add_argument("--token", help="bearer token of this client's identity (env VOS_TOKEN)")
    g.add_argument("--tls-ca", help="PEM CA of the server's certificate: connect over TLS (env VOS_TLS_CA)")
    g.add_argument("--tls-cert", help="PEM client certificate for mutual TLS (env VOS_TLS_CERT)")
    g.add_argument("--tls-key", help="PEM key of --tls-cert (env VOS_TLS_KEY)")
    g.add_argument("--tls-server-name", help="the name in the server's certificate, if not --server's host")


def credentials_from_args(args: argparse.Namespace) -> Credentials:
    creds = Credentials.from_env(args.token, args.tls_ca, args.tls_cert, args.tls_key)
    if args.tls_server_name:
        creds = Credentials(creds.token, creds.tls_ca, creds.tls_cert, creds.tls_key, args.tls_server_name)
    return creds
