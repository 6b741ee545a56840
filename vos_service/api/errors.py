"""Domain exceptions -> gRPC status codes: the one place the mapping lives.

engine/ and runtime/ raise domain errors and never learn about gRPC; the
servicers catch them and call `abort`. Anything unmapped is a bug: INTERNAL.
"""

from __future__ import annotations

from typing import NoReturn

import grpc

from ..engine.errors import (
    FrameNotAvailableError,
    InvalidFrameError,
    InvalidPromptError,
    ModelConfigError,
    UnknownObjectError,
)
from ..io.decode import FrameDecodeError
from ..runtime.types import (
    LimitExceededError,
    ShuttingDownError,
    StreamExistsError,
    StreamNotFoundError,
    UnavailableError,
)
from .auth import PermissionDeniedError, UnauthenticatedError


class InvalidRequestError(ValueError):
    """A request message is malformed (a field missing or out of range): INVALID_ARGUMENT."""


# Checked in order: the first matching class wins (subclasses before their bases).
_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (InvalidRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidFrameError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidPromptError, grpc.StatusCode.INVALID_ARGUMENT),
    (FrameDecodeError, grpc.StatusCode.INVALID_ARGUMENT),
    (ModelConfigError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownObjectError, grpc.StatusCode.NOT_FOUND),
    (StreamNotFoundError, grpc.StatusCode.NOT_FOUND),
    (FrameNotAvailableError, grpc.StatusCode.FAILED_PRECONDITION),
    (LimitExceededError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StreamExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (ShuttingDownError, grpc.StatusCode.UNAVAILABLE),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
)

# Errors a client can cause; the others are service faults (worth a log line with a traceback).
CLIENT_ERRORS = tuple(cls for cls, _ in _CODES)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message for a domain exception (INTERNAL for anything else)."""
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code, str(exc) or cls.__name__
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> NoReturn:
    """End the RPC with the status `exc` maps to (raises grpc's AbortError)."""
    code, message = status_for(exc)
    await context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover
