"""Waiting for killed processes to leave /proc."""

from __future__ import annotations

import time
from collections.abc import Callable, Sized


def processes_gone(find: Callable[[str], Sized], token: str, timeout: float = 5.0) -> bool:
    """True once no process matches ``token``. A SIGKILLed process lingers in /proc
    for a moment on a loaded machine; wait for it rather than racing it."""
    deadline = time.monotonic() + timeout
    while len(find(token)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
