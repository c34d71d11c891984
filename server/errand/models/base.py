"""The model contract: a conversation in, one assistant turn out.

Conversation items are msgspec structs so that a task's conversation can be stored
and resumed for follow-ups. Each API adapter converts them to its own wire format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec


class ToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str
    """Raw JSON text as the model produced it; it may be malformed."""


class SystemMsg(msgspec.Struct, tag="system", frozen=True):
    text: str


class UserMsg(msgspec.Struct, tag="user", frozen=True):
    text: str


class AssistantMsg(msgspec.Struct, tag="assistant", frozen=True):
    text: str = ""
    tool_calls: list[ToolCall] = []
    opaque: list[dict[str, Any]] = []
    """API-specific items to send back verbatim (e.g. Responses reasoning items)."""


class ToolResult(msgspec.Struct, tag="tool", frozen=True):
    call_id: str
    name: str
    output: str
    header: str = ""
    """What stays of ``output`` when it is trimmed to save context."""
    trimmed: bool = False


Item = SystemMsg | UserMsg | AssistantMsg | ToolResult


class ToolSpec(msgspec.Struct, frozen=True):
    name: str
    description: str
    parameters: dict[str, Any]


class TurnUsage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


class ModelTurn(msgspec.Struct):
    message: AssistantMsg
    usage: TurnUsage
    finish_reason: str | None = None
    refusal: str | None = None


TextSink = Callable[[str], None]


class ModelError(RuntimeError):
    """The model could not produce a turn (after the client's own retries)."""


class Model(Protocol):
    name: str

    async def complete(
        self, items: list[Item], tools: list[ToolSpec], on_text: TextSink | None = None
    ) -> ModelTurn: ...

    async def close(self) -> None: ...


def encode_items(items: list[Item]) -> bytes:
    return msgspec.json.encode(items)


def decode_items(data: bytes) -> list[Item]:
    return msgspec.json.decode(data, type=list[Item])
