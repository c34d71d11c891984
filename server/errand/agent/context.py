"""Keep a conversation inside the model's context window.

When the conversation nears its budget, the outputs of the oldest tool results are
cut down to the header the tool gave them (chunk id, exit code) and a note, so the
model can still cite them; the full output stays in errand's record. Pure.
"""

from __future__ import annotations

import msgspec

from errand.models.base import AssistantMsg, Item, SystemMsg, ToolResult, UserMsg

TRIMMED_NOTE = "[output trimmed to save context: {size} characters; the full output is on record]"


def size_of(items: list[Item]) -> int:
    total = 0
    for item in items:
        if isinstance(item, (SystemMsg, UserMsg)):
            total += len(item.text)
        elif isinstance(item, AssistantMsg):
            total += len(item.text) + sum(len(c.arguments) + len(c.name) for c in item.tool_calls)
        elif isinstance(item, ToolResult):
            total += len(item.output)
    return total


def _trimmed(item: ToolResult) -> str:
    note = TRIMMED_NOTE.format(size=len(item.output))
    return f"{item.header}\n{note}" if item.header else note


def trim_tool_outputs(items: list[Item], *, budget_chars: int, keep_recent: int = 3) -> int:
    """Trim the oldest tool outputs in place until ``items`` fit ``budget_chars``.

    The ``keep_recent`` newest tool results are never trimmed. Returns how many
    outputs were trimmed.
    """
    size = size_of(items)
    if size <= budget_chars:
        return 0
    positions = [i for i, item in enumerate(items) if isinstance(item, ToolResult)]
    candidates = positions[:-keep_recent] if keep_recent else positions
    trimmed = 0
    for index in candidates:
        if size <= budget_chars:
            break
        item = items[index]
        assert isinstance(item, ToolResult)
        if item.trimmed:
            continue
        shorter = _trimmed(item)
        if len(shorter) >= len(item.output):
            continue
        size -= len(item.output) - len(shorter)
        items[index] = msgspec.structs.replace(item, output=shorter, trimmed=True)
        trimmed += 1
    return trimmed


INTERRUPTED_CALL = (
    "error: interrupted: errand stopped before this call finished, and its effect is not "
    "known; look at the copy's state, and run it again if you still need it"
)


def close_dangling_calls(items: list[Item]) -> int:
    """Answer the tool calls of the last assistant turn that have no result (the attempt
    was interrupted while they ran), so the conversation can go on. Returns how many."""
    last = next(
        (i for i in range(len(items) - 1, -1, -1) if isinstance(items[i], AssistantMsg)), None
    )
    if last is None:
        return 0
    turn = items[last]
    assert isinstance(turn, AssistantMsg)
    answered = {item.call_id for item in items[last + 1 :] if isinstance(item, ToolResult)}
    missing = [call for call in turn.tool_calls if call.id not in answered]
    for call in missing:
        items.append(ToolResult(call_id=call.id, name=call.name, output=INTERRUPTED_CALL))
    return len(missing)
