"""``apply_patch``: parse, plan, then write, all or nothing.

The one entry point the agent's tool calls. It only sequences the steps: ``parse`` (the
text), ``plan`` (the tree, in memory) and ``write`` (the disk, with rollback), and adds
the "No files were changed." line the model relies on to every refusal. It re-exports
what a caller needs beside it (``PatchResult``, ``PatchError``), so ``errand.patch.apply``
and ``errand.patch`` are both complete places to import from.
"""

from __future__ import annotations

import logging
from pathlib import Path

from errand.patch.errors import NOTHING_CHANGED, PatchError
from errand.patch.parse import parse_patch
from errand.patch.plan import Plan
from errand.patch.result import PatchResult
from errand.patch.write import execute

__all__ = ["PatchError", "PatchResult", "apply_patch"]  # all a caller needs, in one place

log = logging.getLogger(__name__)


def apply_patch(text: str, root: Path) -> PatchResult:
    """Apply patch ``text`` to the tree at ``root``, all or nothing.

    Raises PatchError (with a message for the model) and leaves the tree untouched when the
    patch is malformed, names a forbidden path, or doesn't match the files.
    """
    try:
        hunks = parse_patch(text)
        plan = Plan(root)
        plan.apply(hunks)
    except PatchError as ex:
        raise PatchError(f"{ex}\n{NOTHING_CHANGED}") from None
    execute(plan.changes())
    result = plan.result()
    log.debug("apply_patch applied: %s", result.summary())
    return result
