"""`vos-service`: the command line. Each command lives in its own module."""

from __future__ import annotations

import argparse
import logging
import sys

import grpc

from . import auth as auth_cli, eval as eval_cli, serve as serve_cli, stream as stream_cli
from . import track as track_cli, train as train_cli, watch as watch_cli, weights as weights_cli
from ..config import SettingsError
from ..engine.errors import EngineError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vos-service", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    auth_cli.add_subparser(sub)
    eval_cli.add_subparser(sub)
    serve_cli.add_subparser(sub)
    stream_cli.add_subparsers(sub)
    track_cli.add_subparser(sub)
    train_cli.add_subparser(sub)
    watch_cli.add_subparser(sub)
    weights_cli.add_subparser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (EngineError, SettingsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except grpc.RpcError as e:  # a service call failed: its status says why
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover - python -m vos_service.cli runs __main__.py
    sys.exit(main())
