"""Errors raised by the engines layer (which may not import streamgan)."""


class EngineError(Exception):
    """A user-facing engine problem: corrupt file, wrong device/version, bad option.

    ``hint`` is a short suggestion the CLI prints after the message.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint
