"""`vos-service auth token`: make a bearer token for an identity; only its sha256 is stored."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..api.auth import Role, hash_token, load_token_file, new_token
from ..config import IdentitySpec
from .exit_codes import CliError
from .options import add_parser


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="auth_command", required=True)
    t = add_parser(sub, "token", help="make a token; print it once, store only its sha256",
                   description="Prints the new token on stdout (give it to the client: --token or "
                               "VOS_TOKEN) and adds the identity, with the token's sha256, to --file.")
    t.add_argument("name", help="the identity's name (logs, errors, stream ownership)")
    t.add_argument("--role", action="append", required=True, choices=[r.value for r in Role],
                   help="what the identity may do (repeatable; README: Security)")
    t.add_argument("--stream", action="append", default=None, metavar="PATTERN",
                   help="stream ids a camera may open (fnmatch, repeatable; default: any)")
    for flag, name, kind in (("--max-streams", "max_streams", int), ("--max-objects", "max_objects", int),
                             ("--max-fps", "max_fps", float)):
        t.add_argument(flag, type=kind, help=f"{_described(name)} (default: the auth.default_* settings)")
    t.add_argument("--file", type=Path, help="token file to add the identity to (created 0600; default: none, "
                                             "the entry is printed on stderr)")
    t.set_defaults(func=run_token)


def _described(name: str) -> str:
    return (IdentitySpec.model_fields[name].description or name).replace("%", "%%")


def run_token(args: argparse.Namespace) -> int:
    token = new_token()
    spec = IdentitySpec(name=args.name, roles=args.role, token_sha256=hash_token(token),
                        streams=args.stream or ["*"], max_streams=args.max_streams,
                        max_objects=args.max_objects, max_fps=args.max_fps)
    entry = spec.model_dump(exclude_none=True)
    if args.file is None:
        print(json.dumps(entry), file=sys.stderr)
    else:
        existing = load_token_file(args.file) if args.file.exists() else []
        if any(e.name == args.name for e in existing):
            raise CliError(f"{args.file} already has an identity {args.name!r}")
        data = {"identities": [e.model_dump(exclude_none=True) for e in existing] + [entry]}
        tmp = args.file.with_name(args.file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, args.file)
    print(token)
    return 0
