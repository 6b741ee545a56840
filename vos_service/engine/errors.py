"""Domain errors of the engine. api/ maps them to gRPC status codes."""


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidFrameError(EngineError, ValueError):
    """A frame is not a uint8 HxWx3 image (maps to INVALID_ARGUMENT)."""


class InvalidPromptError(EngineError, ValueError):
    """A prompt is malformed or out of bounds (maps to INVALID_ARGUMENT)."""


class UnknownObjectError(EngineError, KeyError):
    """No object with this id is tracked in the stream (maps to NOT_FOUND)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else "unknown object"


class FrameNotAvailableError(EngineError, LookupError):
    """The frame is no longer (or not yet) in the feature ring (maps to FAILED_PRECONDITION)."""


class ModelConfigError(EngineError, ValueError):
    """A model config, checkpoint or option cannot be used (maps to INVALID_ARGUMENT)."""
