"""Errors raised by the engines layer (which may not import streamgan)."""


def runtime_says(exc: BaseException, limit: int = 200) -> str:
    """The first line of a runtime's error that says what went wrong (OpenVINO's messages open
    with the source locations they were raised at: "Exception from ...", "Check '...' failed")."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip() and not ln.startswith(("Exception from", "Check '"))]
    return (lines[0] if lines else type(exc).__name__)[:limit]


class EngineError(Exception):
    """A user-facing engine problem: corrupt file, wrong device/version, bad option.

    ``hint`` is a short suggestion the CLI prints after the message.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint
