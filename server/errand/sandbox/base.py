"""The sandbox contract: run one shell command inside a task copy, with caps.

Backends live one per module (``bwrap``, ``docker``, ``none``) and are imported
lazily by :func:`errand.sandbox.open_sandbox`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

OutputSink = Callable[[str], None]
"""Receives decoded output text as it is produced (stdout and stderr merged)."""


class SandboxUnavailable(RuntimeError):
    """The backend cannot run here. The message says how to fix it."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-command caps. Every backend enforces all of them."""

    timeout_s: float = 120.0
    max_output_bytes: int = 1 << 20
    max_processes: int = 256
    max_memory_bytes: int = 2 << 30
    max_file_bytes: int = 1 << 30

    def with_timeout(self, timeout_s: float | None) -> Limits:
        """These limits, with the command's own wall-time cap when it asks for one."""
        return self if timeout_s is None else dataclasses.replace(self, timeout_s=timeout_s)


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What a sandbox is opened on."""

    root: Path
    """The task copy: the working directory and the only writable place."""
    writable: bool = True
    """False for ask mode: the copy is bound read-only too."""
    network: bool = False
    env: dict[str, str] = field(default_factory=dict)
    """Extra variables on top of the backend's allowlist (never the parent's env)."""
    limits: Limits = field(default_factory=Limits)
    read_only_binds: tuple[Path, ...] = ()
    """Host folders made visible read-only at the same path (the object folders a
    copy's ``.git`` borrows, so that ``git`` works inside)."""


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    output: str
    """Merged stdout+stderr, decoded as UTF-8 with replacement; the middle is cut
    with a marker line when it exceeded ``max_output_bytes``."""
    duration_ms: int
    timed_out: bool = False
    truncated: bool = False
    killed_reason: str | None = None
    """Why the engine killed the command (timeout, output cap...), if it did."""


class Sandbox(Protocol):
    name: str
    warnings: tuple[str, ...]
    """What a reviewer must know about this sandbox (unsandboxed, a cap it can't
    enforce here); shown on every attempt that used it."""

    async def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        on_output: OutputSink | None = None,
    ) -> ExecResult:
        """Run ``bash -lc command`` in ``spec.root``. Cancelling the awaiting task
        kills the whole process tree before the cancellation propagates."""
        ...

    async def close(self) -> None:
        """Kill anything still running and release resources. Idempotent."""
        ...
