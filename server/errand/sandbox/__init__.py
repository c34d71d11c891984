"""Sandbox backends, imported lazily by name."""

from __future__ import annotations

import importlib

from errand.config.settings import SANDBOXES
from errand.sandbox.base import (
    ExecResult,
    Limits,
    OutputSink,
    Sandbox,
    SandboxSpec,
    SandboxUnavailable,
)

BACKENDS = SANDBOXES

__all__ = [
    "BACKENDS",
    "ExecResult",
    "Limits",
    "OutputSink",
    "Sandbox",
    "SandboxSpec",
    "SandboxUnavailable",
    "open_sandbox",
]


async def open_sandbox(kind: str, spec: SandboxSpec) -> Sandbox:
    """Open a sandbox of backend ``kind``. Raises :class:`SandboxUnavailable` with an
    actionable message when the backend cannot work here; never falls back."""
    if kind not in BACKENDS:
        raise SandboxUnavailable(f"unknown sandbox {kind!r}; choose one of {', '.join(BACKENDS)}")
    module = importlib.import_module(f"errand.sandbox.{kind}")
    sandbox: Sandbox = await module.open(spec)
    return sandbox
