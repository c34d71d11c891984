"""What the server reads from a request's conversation: the first user text, the
turn it is at, and hints of the variant it follows. No state is kept per conversation."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from support.replay.scenario import Scenario, dumps

ENCRYPTED_PREFIX: Final = "rpl1."
_VARIANT_IN_ID: Final = re.compile(r"_v(\d+)_t(\d+)")
_ASSISTANT_ITEM_TYPES: Final = frozenset(
    {
        "function_call",
        "reasoning",
        "custom_tool_call",
        "local_shell_call",
        "shell_call",
        "apply_patch_call",
        "web_search_call",
        "file_search_call",
        "computer_call",
        "code_interpreter_call",
        "image_generation_call",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "compaction",
    }
)
_NEUTRAL_ITEM_TYPES: Final = frozenset({"item_reference"})


@dataclass(frozen=True)
class History:
    """What the server reads from a request's conversation."""

    first_user_text: str
    turn_index: int
    variant_hints: tuple[int, ...]
    assistant_texts: tuple[str, ...]
    prefix_chars: int


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def _hints_from_id(value: object) -> list[int]:
    if not isinstance(value, str):
        return []
    found = _VARIANT_IN_ID.search(value)
    return [int(found.group(1))] if found else []


def _hints_from_encrypted(value: object) -> list[int]:
    if not isinstance(value, str) or not value.startswith(ENCRYPTED_PREFIX):
        return []
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value[len(ENCRYPTED_PREFIX) :]))
    except (binascii.Error, ValueError):
        return []
    variant = decoded.get("v") if isinstance(decoded, dict) else None
    return [variant] if isinstance(variant, int) else []


def chat_history(messages: Sequence[object]) -> History:
    """Read a Chat Completions ``messages`` list."""
    first_user: str | None = None
    texts: list[str] = []
    hints: list[int] = []
    in_run = False
    prefix_end = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "assistant":
            if not in_run:
                texts.append("")
            in_run = True
            texts[-1] += _text_of(message.get("content"))
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict):
                    hints += _hints_from_id(call.get("id"))
            prefix_end = i + 1
            continue
        in_run = False
        if role == "user" and first_user is None:
            first_user = _text_of(message.get("content"))
        if role == "tool":
            hints += _hints_from_id(message.get("tool_call_id"))
    return History(
        first_user_text=first_user or "",
        turn_index=len(texts),
        variant_hints=tuple(hints),
        assistant_texts=tuple(texts),
        prefix_chars=len(dumps(list(messages[:prefix_end]))) if prefix_end else 0,
    )


def responses_history(items: Sequence[object]) -> History:
    """Read a Responses ``input`` list (with any previous-response items in front)."""
    first_user: str | None = None
    texts: list[str] = []
    hints: list[int] = []
    in_run = False
    prefix_end = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        role = item.get("role")
        if kind in _NEUTRAL_ITEM_TYPES:
            continue
        is_message = kind in (None, "message")
        if kind in _ASSISTANT_ITEM_TYPES or (is_message and role == "assistant"):
            if not in_run:
                texts.append("")
            in_run = True
            if is_message:
                texts[-1] += _text_of(item.get("content"))
            hints += _hints_from_id(item.get("id")) + _hints_from_id(item.get("call_id"))
            hints += _hints_from_encrypted(item.get("encrypted_content"))
            prefix_end = i + 1
            continue
        in_run = False
        if is_message and role == "user" and first_user is None:
            first_user = _text_of(item.get("content"))
        hints += _hints_from_id(item.get("call_id"))
    return History(
        first_user_text=first_user or "",
        turn_index=len(texts),
        variant_hints=tuple(hints),
        assistant_texts=tuple(texts),
        prefix_chars=len(dumps(list(items[:prefix_end]))) if prefix_end else 0,
    )


def recover_variant(history: History, scenario: Scenario) -> int:
    count = len(scenario.variants)
    for hint in history.variant_hints:
        if 0 <= hint < count:
            return hint
    candidates = set(range(count))
    for turn_index, text in enumerate(history.assistant_texts):
        if not text:
            continue
        matching = {
            v
            for v in candidates
            if turn_index < len(scenario.variants[v])
            and (scenario.variants[v][turn_index].content or "") == text
        }
        if matching:
            candidates = matching
    return min(candidates) if len(candidates) < count else 0
