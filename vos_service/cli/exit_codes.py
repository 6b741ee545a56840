"""The command line's one table from an error to an exit code (README: Exit codes).

A script can tell "fix the command" (2) from "try again later" (3) from "it was refused"
(1). Every error in the table prints one line, ``error: ...``, never a traceback; an
error outside the table is a bug: its traceback is printed and the exit code is 70.

Classes are looked up by module name in ``sys.modules``: an exception can only be an
instance of a class whose module was imported, so mapping an error imports nothing
(``vos-service watch`` never pays for grpc, torch or pydantic to report a failure).
"""

from __future__ import annotations

import enum
import sys
from typing import Optional


class ExitCode(enum.IntEnum):
    OK = 0
    REFUSED = 1  # understood and answered no: a gRPC status (NOT_FOUND, PERMISSION_DENIED, ...), a bad checksum
    USAGE = 2  # bad input, as argparse's own usage errors: flags, settings, names, input files
    UNAVAILABLE = 3  # not there now, try again later: server or Redis unreachable, checkpoint not downloaded
    INTERNAL = 70  # a bug (sysexits' EX_SOFTWARE): the traceback is printed
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class CliError(Exception):
    """An error a command reports itself, with its exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.code = code


# gRPC status name -> exit code; a status not named here is REFUSED.
_GRPC = {"INVALID_ARGUMENT": ExitCode.USAGE, "OUT_OF_RANGE": ExitCode.USAGE,
         "UNAVAILABLE": ExitCode.UNAVAILABLE, "DEADLINE_EXCEEDED": ExitCode.UNAVAILABLE}

# (module, class, code), most specific first: the first class the error is an instance of wins.
TABLE: tuple[tuple[str, str, ExitCode], ...] = (
    ("vos_service.weights.checkpoints", "CheckpointUnavailableError", ExitCode.UNAVAILABLE),  # not downloaded
    ("vos_service.weights.checkpoints", "CheckpointVerificationError", ExitCode.REFUSED),  # the bytes are wrong
    ("vos_service.train.ship", "ShipRefused", ExitCode.REFUSED),  # does not beat the shipped card
    ("vos_service.publish.embedded", "RedisLaunchError", ExitCode.UNAVAILABLE),  # no redis-server to start
    ("redis.exceptions", "ConnectionError", ExitCode.UNAVAILABLE),
    ("redis.exceptions", "TimeoutError", ExitCode.UNAVAILABLE),
    ("vos_service.config", "SettingsError", ExitCode.USAGE),
    ("vos_service.eval.scores", "EvalError", ExitCode.USAGE),
    ("vos_service.engine.errors", "EngineError", ExitCode.USAGE),  # unknown names, bad configs, bad prompts
    ("builtins", "FileNotFoundError", ExitCode.USAGE),  # an input path that is not there
    ("builtins", "ConnectionError", ExitCode.UNAVAILABLE),
    ("builtins", "TimeoutError", ExitCode.UNAVAILABLE),
    ("builtins", "OSError", ExitCode.REFUSED),  # e.g. a port already in use, an unwritable --out
)


def exit_code_for(exc: BaseException) -> Optional[ExitCode]:
    """The exit code of a known error, or None for an error outside the table (a bug)."""
    if isinstance(exc, CliError):
        return exc.code
    grpc = sys.modules.get("grpc")
    if grpc is not None and isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        return _GRPC.get(exc.code().name, ExitCode.REFUSED)
    for module, name, code in TABLE:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return code
    return None


def describe(exc: BaseException) -> str:
    """The one line printed after ``error: ``."""
    grpc = sys.modules.get("grpc")
    if grpc is not None and isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        return f"{exc.code().name}: {exc.details()}"  # the status says why
    return str(exc) or type(exc).__name__
