"""Recognise which recorded commands are checks (tests, linters, type checkers).

Pure: a command line in, a verdict out. The engine turns recorded commands that are
checks into :class:`errand.wire.protocol.Check` entries, from their real exit codes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from errand.wire.protocol import Check

if TYPE_CHECKING:
    from errand.agent.tools import CommandRecord

_RUNNERS: tuple[tuple[str, ...], ...] = (
    ("pytest",),
    ("py.test",),
    ("tox",),
    ("nox",),
    ("ruff",),
    ("mypy",),
    ("pyright",),
    ("eslint",),
    ("tsc",),
    ("jest",),
    ("vitest",),
    ("go", "test"),
    ("go", "vet"),
    ("cargo", "test"),
    ("cargo", "clippy"),
    ("npm", "test"),
    ("npm", "run", "test"),
    ("npm", "run", "lint"),
    ("pnpm", "test"),
    ("pnpm", "run", "test"),
    ("yarn", "test"),
    ("yarn", "run", "test"),
    ("make", "test"),
    ("make", "check"),
    ("make", "lint"),
)

_PYTHON = re.compile(r"^python(\d(\.\d+)?)?$")
_PYTHON_MODULES = {"pytest", "unittest", "tox", "nox", "mypy", "ruff", "pyright"}
_WRAPPERS = {"uv", "poetry", "pipenv", "hatch", "npx", "pnpx", "bunx", "env", "time", "timeout"}
_SPLIT = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")


def _words(segment: str) -> list[str]:
    try:
        words = shlex.split(segment)
    except ValueError:
        words = segment.split()
    # Drop leading VAR=value assignments and wrapper commands ("uv run pytest").
    while words and ("=" in words[0] and not words[0].startswith("-")):
        words = words[1:]
    while words and words[0] in _WRAPPERS:
        words = words[1:]
        if words and words[0] == "run":
            words = words[1:]
        while words and words[0].startswith("-"):
            words = words[1:]
        while words and words[0].isdigit():  # timeout 60 pytest
            words = words[1:]
    return words


def _segment_is_check(words: list[str], extra: Iterable[str]) -> bool:
    if not words:
        return False
    base = [words[0].rsplit("/", 1)[-1], *words[1:]]
    if _PYTHON.match(base[0]) and len(base) >= 3 and base[1] == "-m":
        return base[2] in _PYTHON_MODULES
    return any(tuple(base[: len(runner)]) == runner for runner in _RUNNERS) or any(
        " ".join(base).startswith(name) for name in extra
    )


def is_check(command: str, extra: Iterable[str] = ()) -> bool:
    """True when ``command`` runs a test suite, linter or type checker.

    ``extra`` holds command prefixes that the repository's AGENTS.md or config name
    as checks. A compound line (``cd x && pytest``) counts when any part is a check.
    """
    extras = [e.strip() for e in extra if e.strip()]
    if any(command.strip().startswith(e) for e in extras):
        return True
    return any(_segment_is_check(_words(part), extras) for part in _SPLIT.split(command))


def is_test_run(command: str) -> bool:
    """True for the checks that run tests (as opposed to linters)."""
    lowered = command.lower()
    return any(
        word in lowered for word in ("test", "pytest", "unittest", "tox", "nox", "jest", "vitest")
    )


def checks_from(commands: Sequence[CommandRecord], extra: Iterable[str] = ()) -> list[Check]:
    """The recorded commands that are checks, in order, with their real exit codes."""
    named = list(extra)
    return [
        Check(
            command=c.command,
            exit_code=c.exit_code,
            passed=c.exit_code == 0,
            duration_ms=c.duration_ms,
            chunk_id=c.chunk_id,
        )
        for c in commands
        if is_check(c.command, named)
    ]
