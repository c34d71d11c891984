"""A scripted model: it plays a fixed list of turns, in order, in-process.

It is not a model, and it says so: its ``name`` is ``scripted``. ``errand demo`` runs
it so that the engine, the sandbox, the checks and the diff are real without an API
key or a network. The turn it plays is the number of assistant messages already in
the conversation, so it keeps no state and a resumed conversation goes on where it
stopped; past the last turn it fails with a :class:`ModelError` that says so.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from errand.models.base import (
    AssistantMsg,
    Item,
    ModelError,
    ModelTurn,
    TextSink,
    ToolCall,
    ToolSpec,
    TurnUsage,
)

_PIECE = 16


class ScriptedCall(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    arguments: dict[str, Any] = {}


class ScriptedTurn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: str = ""
    tool_calls: list[ScriptedCall] = []


class Script(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    turns: list[ScriptedTurn]
    description: str = ""


def load_script(data: bytes | str) -> Script:
    """Decode a script (JSON); a misspelt key fails here, not in the middle of a run."""
    try:
        return msgspec.json.decode(data, type=Script)
    except msgspec.DecodeError as exc:
        raise ModelError(f"bad model script: {exc}") from None


class ScriptedModel:
    """Plays ``turns`` in order, streaming each turn's text in word-sized pieces,
    ``delay_s`` apart, and reporting token counts from the conversation's size."""

    name = "scripted"

    def __init__(self, turns: Sequence[ScriptedTurn], *, delay_s: float = 0.0) -> None:
        self.turns = tuple(turns)
        self.delay_s = delay_s

    async def complete(
        self, items: list[Item], tools: list[ToolSpec], on_text: TextSink | None = None
    ) -> ModelTurn:
        done = [i for i, item in enumerate(items) if isinstance(item, AssistantMsg)]
        index = len(done)
        if index >= len(self.turns):
            raise ModelError(
                f"the scripted model (not a real model) has no turn {index + 1}: "
                f"its script ends after {len(self.turns)}"
            )
        turn = self.turns[index]
        for piece in _pieces(turn.text):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if on_text is not None:
                on_text(piece)
        calls = [
            ToolCall(
                id=f"call_scripted_{index}_{i}",
                name=call.name,
                arguments=msgspec.json.encode(call.arguments).decode(),
            )
            for i, call in enumerate(turn.tool_calls)
        ]
        message = AssistantMsg(text=turn.text, tool_calls=calls)
        return ModelTurn(
            message=message,
            usage=_usage(items, tools, message, done[-1] + 1 if done else 0),
            finish_reason="tool_calls" if calls else "stop",
        )

    async def close(self) -> None:
        return None


def _pieces(text: str) -> list[str]:
    """Word-sized pieces (long words sliced) that join back into ``text``."""
    pieces: list[str] = []
    for word in re.findall(r"\s*\S+|\s+", text):
        pieces += [word[i : i + _PIECE] for i in range(0, len(word), _PIECE)]
    return pieces


def _usage(items: list[Item], tools: list[ToolSpec], reply: AssistantMsg, cached: int) -> TurnUsage:
    """About four characters a token, without a tokenizer. The conversation up to the
    last assistant turn counts as cached, as a provider's prompt cache would."""
    sizes = [len(msgspec.json.encode(item)) for item in items]
    prefix = len(msgspec.json.encode(tools))
    out = len(reply.text) + sum(len(c.name) + len(c.arguments) for c in reply.tool_calls)
    return TurnUsage(
        input_tokens=(prefix + sum(sizes)) // 4,
        output_tokens=max(1, out // 4),
        cached_tokens=(prefix + sum(sizes[:cached])) // 4 if cached else 0,
    )
