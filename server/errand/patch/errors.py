"""What goes wrong: ``PatchError`` and the helpers that word its messages.

Every module of the package raises ``PatchError`` and quotes file or patch lines the same
way, so the error type and its wording helpers live here, below all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

NOTHING_CHANGED = "No files were changed."


class PatchError(Exception):
    """A patch that can't be applied. ``str(exc)`` is a message meant for the model.

    Nothing was changed, except when ``partial`` is True: a write failed and rolling it back
    failed too, so the files the message names may be half-changed.
    """

    def __init__(self, message: str, *, partial: bool = False) -> None:
        super().__init__(message)
        self.partial = partial


def quote(line: str, limit: int = 120) -> str:
    """Quote a line of text for an error message."""
    if len(line) > limit:
        line = line[:limit] + "…"
    return repr(line)


def indent(lines: Sequence[str], limit: int = 5) -> str:
    """Quote up to ``limit`` lines, one per indented row, for an error message."""
    shown = [f"    {quote(x)}" for x in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"    … ({len(lines) - limit} more)")
    return "\n".join(shown)
