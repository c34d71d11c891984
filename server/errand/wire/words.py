"""Words for showing a client's values in messages: cut to a size a person can read."""

from __future__ import annotations

MAX_MESSAGE = 2000


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def format_path(path: list[str | int]) -> str:
    """``path`` as ``a.b[0].c``, at most 12 steps of it."""
    out = ""
    if len(path) > 12:
        return f"{format_path(path[:8])}…({len(path) - 8} more levels)"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            shown = clip(part, 60)
            out += f".{shown}" if out else shown
    return out or "the message"
