"""The StreamganError family: user mistakes that the CLI prints as one line (no traceback)."""

from engines.errors import EngineError

__all__ = [
    "StreamganError", "InputError", "CheckpointError", "OutputError", "OptionError",
    "EngineError", "PipelineError", "Interrupted",
]


class StreamganError(Exception):
    """Base class of user-facing errors; ``hint`` is printed after the message."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class InputError(StreamganError):
    """Missing, empty, unreadable or unsupported input."""


class CheckpointError(StreamganError):
    """A file that is not a generator checkpoint, or an unknown layout."""


class OutputError(StreamganError):
    """An output path that cannot or must not be written."""


class OptionError(StreamganError):
    """A bad command-line option or argument value."""


class PipelineError(StreamganError):
    """The run failed part-way (decode error, lost frames, a live input lost for good)."""

    exit_code = 3


class Interrupted(StreamganError):
    """Ctrl-C ended a live run after its outputs were finished (a recording kept up to the stop)."""

    exit_code = 130
