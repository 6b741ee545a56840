"""`vos-service`: the command line. Each command lives in its own module of this package.

Only the command given is imported: `vos-service --help` lists COMMANDS without importing
any of them, and `watch`, `stream`, `prompt` or `weights list` never import torch or sam2
(a client-only install has neither). Errors map to exit codes in one table (exit_codes.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from dataclasses import dataclass
from typing import Optional, Sequence

from .. import __version__
from .exit_codes import ExitCode, describe, exit_code_for
from .options import COMMON, DEFAULT_LOG_LEVEL, add_parser


@dataclass(frozen=True)
class Command:
    """A command: its module (in this package) has ``configure(parser)``, which sets ``func``."""

    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "serve": Command("serve", "run the gRPC streaming service"),
    "stream": Command("stream", "stream a video file, webcam or URL to the service"),
    "prompt": Command("prompt", "add or correct an object on a running stream"),
    "watch": Command("watch", "tail masklets or events from Redis"),
    "track": Command("track", "segment objects through a video file, offline"),
    "weights": Command("weights", "list or download SAM 2 checkpoints"),
    "auth": Command("auth", "identities and tokens for the service"),
    "train": Command("train", "train a SAM 2 model on synthetic video, or ship a trained one"),
    "eval": Command("eval", "DAVIS J&F of predicted masks against ground truth"),
}


def build_parser(commands: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the arguments of ``commands`` (the others: name and help only)."""
    p = argparse.ArgumentParser(prog="vos-service", description=__doc__.split("\n\n")[0], parents=[COMMON])
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        parser = add_parser(sub, name, help=command.help, description=command.help)
        if name in commands:
            importlib.import_module(f"{__package__}.{command.module}").configure(parser)
    return p


def command_in(argv: Sequence[str]) -> Optional[str]:
    """The command named on the line (the first word that is not an option), if any."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--log-level":
            skip = True  # its value is no command
        elif word == "--":
            return None
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = command_in(argv)
    args = build_parser([command] if command in COMMANDS else []).parse_args(argv)  # usage errors exit 2
    level = getattr(args, "log_level", DEFAULT_LOG_LEVEL)
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("vos-service: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except Exception as e:
        code = exit_code_for(e)
        if code is None:  # not an error we know: a bug, which deserves its traceback
            traceback.print_exc()
            return int(ExitCode.INTERNAL)
        print(f"error: {describe(e)}", file=sys.stderr)
        return int(code)
