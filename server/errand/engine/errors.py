"""The engine's own exceptions. Front ends map them onto their protocol's errors."""

from __future__ import annotations


class EngineError(Exception):
    """A valid request the engine can't carry out now; the message is for a person."""


class BadArguments(EngineError):
    """The request's arguments are wrong: out of range, blank, or naming something
    that does not exist. InvalidParams on the wire."""


class UnknownTask(BadArguments):
    pass


class SetupFailed(EngineError):
    """The repository's setup script exited non-zero; the message names its chunk."""
