"""Scripted, OpenAI-compatible model server: the test suite's only stand-in.

It also backs ``errand demo``, which tells the user it is watching a replay.
It is not a model. It plays turns that a scenario file scripts in advance, and
it speaks the real HTTP wire format, so the official ``openai`` package talks
to it through ``base_url`` the way it talks to the real service.

Endpoints
=========

Every path works with or without the ``/v1`` prefix.

``POST /chat/completions``
    Chat Completions, as a single JSON body or, with ``"stream": true``, as
    server-sent events (``data: {chunk}`` lines and a closing
    ``data: [DONE]``). Tool-call arguments and text reach the client in several
    pieces, so the client has to put them back together. The first chunk of a
    tool call carries ``index``, ``id``, ``type`` and ``function.name``; later
    chunks carry only ``index`` and pieces of ``function.arguments``.
    ``finish_reason`` is ``tool_calls`` when the turn calls tools and ``stop``
    when it does not. The JSON body always carries ``usage``. A stream carries
    it only when ``stream_options.include_usage`` is set: every chunk then has
    ``"usage": null``, and a last chunk has ``"choices": []`` and the usage.
``POST /responses``
    The Responses API, as a single JSON body or as the real event stream:
    ``response.created``, ``response.in_progress``, and then for each output
    item ``response.output_item.added`` → the item's own events →
    ``response.output_item.done``, and finally ``response.completed``. The
    completed event holds the whole response with ``usage``. The item events
    are:

    * a message: ``response.content_part.added``, then
      ``response.output_text.delta`` (or ``response.refusal.delta``) several
      times, then ``response.output_text.done`` (or
      ``response.refusal.done``), then ``response.content_part.done``;
    * a function call: ``response.function_call_arguments.delta`` several times,
      then ``response.function_call_arguments.done``;
    * a reasoning item: ``response.reasoning_summary_part.added`` →
      ``response.reasoning_summary_text.delta`` several times →
      ``response.reasoning_summary_text.done`` →
      ``response.reasoning_summary_part.done``, but only when the request asks
      for a summary (``reasoning.summary`` set), as the real service does.

    The output items come in this order: reasoning (``rs_…``), then the
    message (``msg_…``, holding the content and/or refusal), then the function
    calls (``fc_…`` ids, ``call_…`` call_ids). A reasoning item carries
    ``encrypted_content`` only when ``include`` holds
    ``"reasoning.encrypted_content"``. It is an opaque token that starts with
    ``rpl1.``. ``previous_response_id`` works for responses that this server
    produced since its last reset.
``GET /models``, ``GET /models/{id}``
    The names of the scenarios, as model objects.
``GET /_requests``
    For tests: a JSON list holding the body of every request that reached
    ``/chat/completions`` and ``/responses``, in order of arrival. Requests
    that failed on purpose are included.
``POST /_reset``
    Forgets the request log, the round-robin counters, the injected-error
    counters and the stored responses.

Errors are sent the way the real service sends them:
``{"error": {"message", "type", "param", "code"}}`` with the HTTP status.

Scenario files
==============

A scenario is one JSON object. A file holds one scenario or a list of them.
A folder is read as every ``*.json`` file in it, sorted by name. Unknown keys
are rejected, so a misspelt key fails at load time and does not silently
change the script::

    {
      "name": "fix-test",                  // required, unique; also a model id
      "description": "free text",          // optional, ignored
      "match": "failing test",             // optional, see "Choosing a scenario"
      "turns": [turn, ...]                 // a script with one variant, or
      "variants": [[turn, ...], [turn, ...]]   // several alternative scripts
    }

Give exactly one of ``turns`` and ``variants``. Each variant needs at least one
turn. A turn is the model's whole reply to one request::

    {
      "content": "text",                   // assistant text (the report, when
                                           // the turn has no tool calls)
      "tool_calls": [{"name": "shell", "arguments": {"command": "ls"}}],
                                           // arguments: an object (sent as
                                           // compact JSON) or a string, sent
                                           // verbatim, for scripting malformed
                                           // arguments; absent: "{}"
      "reasoning": "text",                 // reasoning summary (Responses API);
                                           // counted as reasoning tokens in both
      "refusal": "text",                   // a refusal instead of / beside content
      "delay_ms": 0,                       // wait before the reply (before the
                                           // first chunk, when streamed)
      "chunk_delay_ms": 0,                 // wait between streamed chunks
      "error": {"status": 429, "times": 2, "message": "...", "type": "...",
                "code": "...", "retry_after_ms": 10},
                                           // fail this turn `times` times (default 1)
                                           // with that status before serving it;
                                           // retry_after_ms sets the retry-after-ms
                                           // header (absent: no header, and the
                                           // client falls back on its own backoff)
      "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                "cached_tokens": 4, "reasoning_tokens": 2}
                                           // overrides for the computed counts;
                                           // input_tokens / output_tokens are
                                           // accepted as aliases
    }

A turn with no ``content``, ``tool_calls`` or ``refusal`` answers with empty
text and ``finish_reason`` ``stop``.

Choosing a scenario, a turn and a variant
=========================================

* **Scenario.** The one whose ``name`` equals the request's ``model``. If none
  does, the first one (in load order) whose ``match`` is a substring of the
  first user message (Chat Completions) or of the first user input (Responses;
  a plain-string ``input`` counts as that message). If none matches, the first
  scenario.
* **Turn.** The number of assistant turns already in the request's history.
  An assistant turn is a maximal run of consecutive assistant items: for Chat
  Completions, ``assistant`` messages; for Responses, assistant ``message``,
  ``function_call`` and ``reasoning`` items (and the other model-produced call
  types) in ``input``, after the items of ``previous_response_id``, if any.
  ``item_reference`` items neither start nor end a run. So the server keeps no
  state for a conversation: parallel conversations and follow-up questions
  work, and so does any replay of a history.
* **Variant.** A request at turn 0 takes the scenario's variants in turn,
  round-robin (0, 1, 2, 0, …). A request that fails on purpose does not use up
  its variant. Later turns find the variant again from the history. The
  generated ids encode it: ``call_v{variant}_t{turn}_{i}`` (tool calls; a
  Responses call has ``fc_v…`` ids and ``call_v…`` call_ids),
  ``msg_v{variant}_t{turn}``, ``rs_v{variant}_t{turn}``, and the reasoning
  ``encrypted_content``. A history that holds none of these ids (for example a
  Chat Completions conversation whose earlier turns called no tools) is
  matched on its assistant text against the variants' scripted ``content``.
  If that fails too, the variant is 0.
* **Running out.** A request past the last turn of its variant gets HTTP 400
  with error code ``replay_script_exhausted`` and a message that names the
  scenario, the variant and the turn, so a test fails clearly.
* **Injected errors** are counted per (scenario, variant, turn): the first
  ``times`` requests that reach that turn fail, whatever conversation they
  belong to. Later requests are served.

Usage numbers
=============

The numbers are deterministic and need no tokenizer.

* ``prompt_tokens`` / ``input_tokens``: the size of the request body in bytes,
  plus the size of the stored items of ``previous_response_id`` as JSON,
  divided by 4.
* ``cached_tokens``: the JSON size of the history up to the end of the last
  assistant turn, divided by 4. It is 0 at turn 0, and it is a stand-in for
  prompt caching.
* ``reasoning_tokens``: ``len(reasoning) // 4``.
* ``completion_tokens`` / ``output_tokens``: the characters of content, refusal,
  tool names and arguments, divided by 4 (at least 1), plus the reasoning
  tokens.

A turn's ``usage`` object overrides any of these numbers.

Chat Completions has no field for reasoning text, so there ``reasoning`` only
shows in ``completion_tokens_details.reasoning_tokens``.

Running it by hand::

    python -m errand.replay scenarios/ extra.json --port 8765
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import ipaddress
import json
import logging
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from os import PathLike
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

__all__ = [
    "InjectedError",
    "ReplayServer",
    "Scenario",
    "ScenarioError",
    "ToolCall",
    "Turn",
    "UsageOverride",
    "load_scenarios",
    "main",
    "parse_scenario",
]

log = logging.getLogger(__name__)

JSONObj = dict[str, Any]

OWNER: Final = "errand-replay"
_ENCRYPTED_PREFIX: Final = "rpl1."
_VARIANT_IN_ID: Final = re.compile(r"_v(\d+)_t(\d+)")
_ARG_PIECE: Final = 8
_TEXT_PIECE: Final = 16
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
_ERROR_TYPES: Final = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout", None),
    409: ("conflict", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "overloaded"),
}


# --------------------------------------------------------------------------- scenarios


class ScenarioError(ValueError):
    """A scenario file or object does not follow the format in the module docstring."""


@dataclass(frozen=True)
class ToolCall:
    """One scripted tool call; ``arguments`` is the exact string put on the wire."""

    name: str
    arguments: str


@dataclass(frozen=True)
class InjectedError:
    """Fail a turn ``times`` times with ``status`` before serving it."""

    status: int
    times: int = 1
    message: str | None = None
    type: str | None = None
    code: str | None = None
    retry_after_ms: int | None = None


@dataclass(frozen=True)
class UsageOverride:
    """Token counts that replace the computed ones (``None`` keeps the computed count)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True)
class Turn:
    """The model's whole reply to one request."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    refusal: str | None = None
    delay_ms: int = 0
    chunk_delay_ms: int = 0
    error: InjectedError | None = None
    usage: UsageOverride = field(default_factory=UsageOverride)


@dataclass(frozen=True)
class Scenario:
    """A named script: one or more alternative variants, each a list of turns."""

    name: str
    variants: tuple[tuple[Turn, ...], ...]
    match: str | None = None
    description: str | None = None

    @classmethod
    def from_dict(cls, data: object, *, where: str = "scenario") -> Scenario:
        return parse_scenario(data, where=where)


def _expect_keys(obj: JSONObj, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _opt_str(obj: JSONObj, key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ScenarioError(f"{where}: {key!r} must be a string, not {type(value).__name__}")


def _opt_int(obj: JSONObj, key: str, where: str, *, minimum: int = 0) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(f"{where}: {key!r} must be an integer >= {minimum}, not {value!r}")
    return value


def _as_obj(data: object, where: str) -> JSONObj:
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a JSON object, not {type(data).__name__}")
    return cast(JSONObj, data)


_TOOL_CALL_KEYS: Final = frozenset({"name", "arguments"})
_ERROR_KEYS: Final = frozenset({"status", "times", "message", "type", "code", "retry_after_ms"})
_USAGE_ALIASES: Final = {
    "prompt_tokens": "prompt_tokens",
    "input_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
    "output_tokens": "completion_tokens",
    "cached_tokens": "cached_tokens",
    "reasoning_tokens": "reasoning_tokens",
}
_TURN_KEYS: Final = frozenset(
    {
        "content",
        "tool_calls",
        "reasoning",
        "refusal",
        "delay_ms",
        "chunk_delay_ms",
        "error",
        "usage",
    }
)
_SCENARIO_KEYS: Final = frozenset({"name", "description", "match", "turns", "variants"})


def _parse_tool_call(data: object, where: str) -> ToolCall:
    obj = _as_obj(data, where)
    _expect_keys(obj, _TOOL_CALL_KEYS, where)
    name = _opt_str(obj, "name", where)
    if not name:
        raise ScenarioError(f"{where}: 'name' is required")
    raw = obj.get("arguments", {})
    if isinstance(raw, str):
        arguments = raw
    elif isinstance(raw, dict):
        arguments = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
    else:
        raise ScenarioError(f"{where}: 'arguments' must be an object or a string")
    return ToolCall(name=name, arguments=arguments)


def _parse_error(data: object, where: str) -> InjectedError:
    obj = _as_obj(data, where)
    _expect_keys(obj, _ERROR_KEYS, where)
    status = _opt_int(obj, "status", where)
    if status is None or not 400 <= status <= 599:
        raise ScenarioError(f"{where}: 'status' must be an HTTP error status (400-599)")
    times = _opt_int(obj, "times", where, minimum=1)
    return InjectedError(
        status=status,
        times=1 if times is None else times,
        message=_opt_str(obj, "message", where),
        type=_opt_str(obj, "type", where),
        code=_opt_str(obj, "code", where),
        retry_after_ms=_opt_int(obj, "retry_after_ms", where),
    )


def _parse_usage(data: object, where: str) -> UsageOverride:
    obj = _as_obj(data, where)
    _expect_keys(obj, frozenset(_USAGE_ALIASES), where)
    values: dict[str, int] = {}
    for key in obj:
        number = _opt_int(obj, key, where)
        if number is not None:
            values[_USAGE_ALIASES[key]] = number
    return UsageOverride(**values)


def _parse_turn(data: object, where: str) -> Turn:
    obj = _as_obj(data, where)
    _expect_keys(obj, _TURN_KEYS, where)
    calls = obj.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ScenarioError(f"{where}: 'tool_calls' must be a list")
    error = obj.get("error")
    usage = obj.get("usage")
    return Turn(
        content=_opt_str(obj, "content", where),
        tool_calls=tuple(
            _parse_tool_call(call, f"{where} tool_calls[{i}]") for i, call in enumerate(calls)
        ),
        reasoning=_opt_str(obj, "reasoning", where),
        refusal=_opt_str(obj, "refusal", where),
        delay_ms=_opt_int(obj, "delay_ms", where) or 0,
        chunk_delay_ms=_opt_int(obj, "chunk_delay_ms", where) or 0,
        error=None if error is None else _parse_error(error, f"{where} error"),
        usage=UsageOverride() if usage is None else _parse_usage(usage, f"{where} usage"),
    )


def _parse_turns(data: object, where: str) -> tuple[Turn, ...]:
    if not isinstance(data, list) or not data:
        raise ScenarioError(f"{where}: expected a non-empty list of turns")
    return tuple(_parse_turn(turn, f"{where} turn {i}") for i, turn in enumerate(data))


def parse_scenario(data: object, *, where: str = "scenario") -> Scenario:
    """Check one scenario object and build it; raise :class:`ScenarioError` on any fault."""
    obj = _as_obj(data, where)
    _expect_keys(obj, _SCENARIO_KEYS, where)
    name = _opt_str(obj, "name", where)
    if not name:
        raise ScenarioError(f"{where}: 'name' is required")
    where = f"{where} {name!r}"
    if ("turns" in obj) == ("variants" in obj):
        raise ScenarioError(f"{where}: give exactly one of 'turns' and 'variants'")
    if "turns" in obj:
        variants: tuple[tuple[Turn, ...], ...] = (_parse_turns(obj["turns"], where),)
    else:
        raw = obj["variants"]
        if not isinstance(raw, list) or not raw:
            raise ScenarioError(f"{where}: 'variants' must be a non-empty list of turn lists")
        variants = tuple(_parse_turns(v, f"{where} variant {i}") for i, v in enumerate(raw))
    return Scenario(
        name=name,
        variants=variants,
        match=_opt_str(obj, "match", where) or None,
        description=_opt_str(obj, "description", where),
    )


def load_scenarios(path: Path | str | PathLike[str]) -> list[Scenario]:
    """Load a scenario file (one object or a list) or every ``*.json`` in a folder."""
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    scenarios: list[Scenario] = []
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ScenarioError(f"{file}: cannot read scenario: {exc}") from exc
        items = data if isinstance(data, list) else [data]
        for i, item in enumerate(items):
            where = f"{file}" if len(items) == 1 else f"{file}[{i}]"
            scenarios.append(parse_scenario(item, where=where))
    return scenarios


ScenarioSource = Sequence[Scenario | JSONObj | Path | str] | Path | str | PathLike[str]


def _collect(source: ScenarioSource) -> list[Scenario]:
    items: Sequence[object] = [source] if isinstance(source, (str, PathLike)) else source
    scenarios: list[Scenario] = []
    for i, item in enumerate(items):
        if isinstance(item, Scenario):
            scenarios.append(item)
        elif isinstance(item, dict):
            scenarios.append(parse_scenario(item, where=f"scenario[{i}]"))
        elif isinstance(item, (str, PathLike)):
            scenarios.extend(load_scenarios(Path(item)))
        else:
            raise ScenarioError(f"scenario[{i}]: unsupported type {type(item).__name__}")
    if not scenarios:
        raise ScenarioError("no scenarios given")
    names = [s.name for s in scenarios]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScenarioError(f"duplicate scenario name(s): {', '.join(duplicates)}")
    return scenarios


# --------------------------------------------------------------------------- histories


@dataclass(frozen=True)
class _History:
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
    if not isinstance(value, str) or not value.startswith(_ENCRYPTED_PREFIX):
        return []
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value[len(_ENCRYPTED_PREFIX) :]))
    except (binascii.Error, ValueError):
        return []
    variant = decoded.get("v") if isinstance(decoded, dict) else None
    return [variant] if isinstance(variant, int) else []


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def chat_history(messages: Sequence[object]) -> _History:
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
    return _History(
        first_user_text=first_user or "",
        turn_index=len(texts),
        variant_hints=tuple(hints),
        assistant_texts=tuple(texts),
        prefix_chars=len(_dumps(list(messages[:prefix_end]))) if prefix_end else 0,
    )


def responses_history(items: Sequence[object]) -> _History:
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
    return _History(
        first_user_text=first_user or "",
        turn_index=len(texts),
        variant_hints=tuple(hints),
        assistant_texts=tuple(texts),
        prefix_chars=len(_dumps(list(items[:prefix_end]))) if prefix_end else 0,
    )


def _recover_variant(history: _History, scenario: Scenario) -> int:
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


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Plan:
    scenario: Scenario
    variant: int
    turn_index: int
    turn: Turn


@dataclass(frozen=True)
class _Failure:
    status: int
    body: JSONObj
    headers: tuple[tuple[str, str], ...] = ()


def _error_body(status: int, message: str, kind: str | None, code: str | None) -> JSONObj:
    default_kind, default_code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {
            "message": message,
            "type": kind or default_kind,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


class _Director:
    """The server's state: scenarios, counters, the request log and stored responses."""

    def __init__(self, scenarios: list[Scenario]) -> None:
        self.scenarios = scenarios
        self._lock = threading.Lock()
        self._round_robin: dict[str, int] = {}
        self._failures: dict[tuple[str, int, int], int] = {}
        self._requests: list[object] = []
        self._responses: dict[str, list[object]] = {}
        self._serial = 0

    def reset(self) -> None:
        with self._lock:
            self._round_robin.clear()
            self._failures.clear()
            self._requests.clear()
            self._responses.clear()

    def record(self, body: object) -> None:
        with self._lock:
            self._requests.append(copy.deepcopy(body))

    def requests(self) -> list[object]:
        with self._lock:
            return copy.deepcopy(self._requests)

    def next_serial(self) -> int:
        with self._lock:
            self._serial += 1
            return self._serial

    def store_response(self, response_id: str, items: list[object]) -> None:
        with self._lock:
            self._responses[response_id] = copy.deepcopy(items)

    def stored_response(self, response_id: str) -> list[object] | None:
        with self._lock:
            items = self._responses.get(response_id)
            return None if items is None else copy.deepcopy(items)

    def select(self, model: object, first_user_text: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.name == model:
                return scenario
        for scenario in self.scenarios:
            if scenario.match is not None and scenario.match in first_user_text:
                return scenario
        return self.scenarios[0]

    def plan(self, model: object, history: _History) -> _Plan | _Failure:
        scenario = self.select(model, history.first_user_text)
        index = history.turn_index
        with self._lock:
            if index == 0:
                variant = self._round_robin.get(scenario.name, 0) % len(scenario.variants)
            else:
                variant = _recover_variant(history, scenario)
            turns = scenario.variants[variant]
            if index >= len(turns):
                message = (
                    f"errand replay: the script ran out. Scenario {scenario.name!r} variant "
                    f"{variant} has {len(turns)} turn(s), and this request is at turn {index} "
                    f"({index} assistant turn(s) already in its history). This is a scripted "
                    "replay server, not a model; add turns to the scenario or end the "
                    "conversation sooner."
                )
                body = _error_body(400, message, None, "replay_script_exhausted")
                return _Failure(400, body, (("x-should-retry", "false"),))
            turn = turns[index]
            error = turn.error
            if error is not None:
                key = (scenario.name, variant, index)
                done = self._failures.get(key, 0)
                if done < error.times:
                    self._failures[key] = done + 1
                    message = error.message or (
                        f"errand replay: injected HTTP {error.status} "
                        f"({done + 1} of {error.times}) for scenario {scenario.name!r} "
                        f"variant {variant} turn {index}"
                    )
                    headers: tuple[tuple[str, str], ...] = ()
                    if error.retry_after_ms is not None:
                        headers = (("retry-after-ms", str(error.retry_after_ms)),)
                    body = _error_body(error.status, message, error.type, error.code)
                    return _Failure(error.status, body, headers)
            if index == 0:
                self._round_robin[scenario.name] = self._round_robin.get(scenario.name, 0) + 1
        return _Plan(scenario, variant, index, turn)


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Counts:
    prompt: int
    completion: int
    cached: int
    reasoning: int


def _counts(turn: Turn, input_chars: int, prefix_chars: int) -> _Counts:
    over = turn.usage
    reasoning = len(turn.reasoning or "") // 4
    visible = len(turn.content or "") + len(turn.refusal or "")
    visible += sum(len(c.name) + len(c.arguments) for c in turn.tool_calls)
    prompt = max(1, input_chars // 4)
    cached = min(prefix_chars // 4, prompt)
    reasoning = reasoning if over.reasoning_tokens is None else over.reasoning_tokens
    completion = max(1, visible // 4) + reasoning
    return _Counts(
        prompt=prompt if over.prompt_tokens is None else over.prompt_tokens,
        completion=completion if over.completion_tokens is None else over.completion_tokens,
        cached=cached if over.cached_tokens is None else over.cached_tokens,
        reasoning=reasoning,
    )


def _text_pieces(text: str) -> list[str]:
    """Split text into word-sized pieces (longer words into slices); joined they are ``text``."""
    pieces: list[str] = []
    for word in re.findall(r"\s*\S+|\s+", text):
        pieces += [word[i : i + _TEXT_PIECE] for i in range(0, len(word), _TEXT_PIECE)]
    return pieces


def _arg_pieces(arguments: str) -> list[str]:
    """Split arguments into fixed slices (cutting through strings and escapes on purpose)."""
    return [arguments[i : i + _ARG_PIECE] for i in range(0, len(arguments), _ARG_PIECE)]


def _call_id(plan: _Plan, i: int) -> str:
    return f"call_v{plan.variant}_t{plan.turn_index}_{i}"


def _chat_usage(counts: _Counts) -> JSONObj:
    return {
        "prompt_tokens": counts.prompt,
        "completion_tokens": counts.completion,
        "total_tokens": counts.prompt + counts.completion,
        "prompt_tokens_details": {"cached_tokens": counts.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": counts.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(turn: Turn) -> str:
    return "tool_calls" if turn.tool_calls else "stop"


def chat_completion(
    plan: _Plan, *, model: str, counts: _Counts, completion_id: str, created: int
) -> JSONObj:
    """The non-streamed Chat Completions body for a planned turn."""
    turn = plan.turn
    message: JSONObj = {
        "role": "assistant",
        "content": turn.content if turn.content is not None or turn.tool_calls else "",
        "refusal": turn.refusal,
        "annotations": [],
    }
    if turn.refusal is not None and turn.content is None:
        message["content"] = None
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(plan, i),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for i, call in enumerate(turn.tool_calls)
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_errand_replay",
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(turn),
            }
        ],
        "usage": _chat_usage(counts),
    }


def chat_chunks(
    plan: _Plan,
    *,
    model: str,
    counts: _Counts,
    completion_id: str,
    created: int,
    include_usage: bool,
) -> Iterator[JSONObj]:
    """The streamed Chat Completions chunks for a planned turn (without ``[DONE]``)."""
    turn = plan.turn

    def chunk(delta: JSONObj, finish: str | None = None) -> JSONObj:
        body: JSONObj = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_errand_replay",
            "service_tier": "default",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = None
        return body

    has_text = turn.content is not None or (not turn.tool_calls and turn.refusal is None)
    yield chunk({"role": "assistant", "content": "" if has_text else None, "refusal": None})
    for piece in _text_pieces(turn.content or ""):
        yield chunk({"content": piece})
    for piece in _text_pieces(turn.refusal or ""):
        yield chunk({"refusal": piece})
    for i, call in enumerate(turn.tool_calls):
        head = {"name": call.name, "arguments": ""}
        yield chunk(
            {
                "tool_calls": [
                    {"index": i, "id": _call_id(plan, i), "type": "function", "function": head}
                ]
            }
        )
        for piece in _arg_pieces(call.arguments):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, _finish_reason(turn))
    if include_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = _chat_usage(counts)
        yield final


def _encrypted_reasoning(plan: _Plan) -> str:
    payload = {
        "s": plan.scenario.name,
        "v": plan.variant,
        "t": plan.turn_index,
        "r": plan.turn.reasoning,
    }
    return _ENCRYPTED_PREFIX + base64.urlsafe_b64encode(_dumps(payload).encode()).decode()


@dataclass(frozen=True)
class _ResponsesOptions:
    """What a Responses request asks for that shapes the output."""

    encrypted_reasoning: bool
    reasoning_summary: bool


def _responses_options(body: JSONObj) -> _ResponsesOptions:
    include = body.get("include") or []
    reasoning = body.get("reasoning")
    summary = reasoning.get("summary") if isinstance(reasoning, dict) else None
    generate = reasoning.get("generate_summary") if isinstance(reasoning, dict) else None
    return _ResponsesOptions(
        encrypted_reasoning=isinstance(include, list) and "reasoning.encrypted_content" in include,
        reasoning_summary=bool(summary or generate),
    )


def response_output(plan: _Plan, options: _ResponsesOptions) -> list[JSONObj]:
    """The finished output items of a planned turn, in wire order."""
    turn = plan.turn
    tag = f"v{plan.variant}_t{plan.turn_index}"
    items: list[JSONObj] = []
    if turn.reasoning is not None:
        reasoning: JSONObj = {
            "type": "reasoning",
            "id": f"rs_{tag}",
            "summary": (
                [{"type": "summary_text", "text": turn.reasoning}]
                if options.reasoning_summary
                else []
            ),
            "status": "completed",
        }
        if options.encrypted_reasoning:
            reasoning["encrypted_content"] = _encrypted_reasoning(plan)
        items.append(reasoning)
    parts: list[JSONObj] = []
    if turn.content is not None or (not turn.tool_calls and turn.refusal is None):
        parts.append(
            {"type": "output_text", "text": turn.content or "", "annotations": [], "logprobs": []}
        )
    if turn.refusal is not None:
        parts.append({"type": "refusal", "refusal": turn.refusal})
    if parts:
        items.append(
            {
                "type": "message",
                "id": f"msg_{tag}",
                "role": "assistant",
                "status": "completed",
                "content": parts,
            }
        )
    for i, call in enumerate(turn.tool_calls):
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{tag}_{i}",
                "call_id": _call_id(plan, i),
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
        )
    return items


def _responses_usage(counts: _Counts) -> JSONObj:
    return {
        "input_tokens": counts.prompt,
        "input_tokens_details": {"cached_tokens": counts.cached, "cache_write_tokens": 0},
        "output_tokens": counts.completion,
        "output_tokens_details": {"reasoning_tokens": counts.reasoning},
        "total_tokens": counts.prompt + counts.completion,
    }


def _sub_object(body: JSONObj, key: str) -> JSONObj:
    value = body.get(key)
    return cast(JSONObj, value) if isinstance(value, dict) else {}


def response_object(
    body: JSONObj,
    *,
    response_id: str,
    created: int,
    status: str,
    output: list[JSONObj],
    usage: JSONObj | None,
) -> JSONObj:
    """A Responses ``response`` object echoing the request's settings as the service does."""
    reasoning = _sub_object(body, "reasoning")
    text = _sub_object(body, "text")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "completed_at": created if status == "completed" else None,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": str(body.get("model", "")),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {
            "effort": reasoning.get("effort"),
            "summary": reasoning.get("summary"),
        },
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, **text},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def response_events(
    body: JSONObj,
    plan: _Plan,
    *,
    response_id: str,
    created: int,
    output: list[JSONObj],
    counts: _Counts,
) -> Iterator[JSONObj]:
    """The Responses stream events for a planned turn, with sequence numbers."""
    sequence = 0

    def event(kind: str, **fields: Any) -> JSONObj:
        nonlocal sequence
        payload: JSONObj = {"type": kind, "sequence_number": sequence, **fields}
        sequence += 1
        return payload

    def snapshot(status: str, items: list[JSONObj], usage: JSONObj | None) -> JSONObj:
        return response_object(
            body,
            response_id=response_id,
            created=created,
            status=status,
            output=items,
            usage=usage,
        )

    yield event("response.created", response=snapshot("in_progress", [], None))
    yield event("response.in_progress", response=snapshot("in_progress", [], None))
    for index, item in enumerate(output):
        item_id = item["id"]
        where = {"item_id": item_id, "output_index": index}
        if item["type"] == "reasoning":
            added = {k: v for k, v in item.items() if k != "encrypted_content"}
            added.update(summary=[], status="in_progress")
            yield event("response.output_item.added", output_index=index, item=added)
            for s_index, summary in enumerate(item["summary"]):
                empty = {"type": "summary_text", "text": ""}
                yield event(
                    "response.reasoning_summary_part.added",
                    summary_index=s_index,
                    part=empty,
                    **where,
                )
                for piece in _text_pieces(summary["text"]):
                    yield event(
                        "response.reasoning_summary_text.delta",
                        summary_index=s_index,
                        delta=piece,
                        **where,
                    )
                yield event(
                    "response.reasoning_summary_text.done",
                    summary_index=s_index,
                    text=summary["text"],
                    **where,
                )
                yield event(
                    "response.reasoning_summary_part.done",
                    summary_index=s_index,
                    part=summary,
                    **where,
                )
        elif item["type"] == "message":
            added = {**item, "status": "in_progress", "content": []}
            yield event("response.output_item.added", output_index=index, item=added)
            for c_index, part in enumerate(item["content"]):
                at = {**where, "content_index": c_index}
                if part["type"] == "output_text":
                    start = {**part, "text": ""}
                    yield event("response.content_part.added", part=start, **at)
                    for piece in _text_pieces(part["text"]):
                        yield event("response.output_text.delta", delta=piece, logprobs=[], **at)
                    yield event("response.output_text.done", text=part["text"], logprobs=[], **at)
                else:
                    start = {**part, "refusal": ""}
                    yield event("response.content_part.added", part=start, **at)
                    for piece in _text_pieces(part["refusal"]):
                        yield event("response.refusal.delta", delta=piece, **at)
                    yield event("response.refusal.done", refusal=part["refusal"], **at)
                yield event("response.content_part.done", part=part, **at)
        else:
            added = {**item, "arguments": "", "status": "in_progress"}
            yield event("response.output_item.added", output_index=index, item=added)
            for piece in _arg_pieces(item["arguments"]):
                yield event("response.function_call_arguments.delta", delta=piece, **where)
            yield event(
                "response.function_call_arguments.done", arguments=item["arguments"], **where
            )
        yield event("response.output_item.done", output_index=index, item=item)
    yield event(
        "response.completed",
        response=snapshot("completed", output, _responses_usage(counts)),
    )


# --------------------------------------------------------------------------- HTTP


def _route(raw_path: str) -> str:
    path = unquote(urlsplit(raw_path).path).rstrip("/") or "/"
    if path == "/v1" or path.startswith("/v1/"):
        path = path[3:] or "/"
    return path


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], director: _Director) -> None:
        self.director = director
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The stdlib prints the traceback to stderr; send it to logging instead.
        log.exception("replay server: error while handling a request from %s", client_address)


class _ClientGone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "errand-replay/1"
    disable_nagle_algorithm = True

    @property
    def director(self) -> _Director:
        return cast(_HTTPServer, self.server).director

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            self.close_connection = True
            raise _ClientGone from exc

    def _send_json(
        self, status: int, payload: object, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_replay_{self.director.next_serial()}")
        self.send_header("x-errand-replay", "scripted")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self._write(data)

    def _send_error_json(self, status: int, message: str, code: str | None = None) -> None:
        self._send_json(status, _error_body(status, message, None, code))

    def _start_events(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-request-id", f"req_replay_{self.director.next_serial()}")
        self.send_header("x-errand-replay", "scripted")
        self.end_headers()
        try:
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc

    def _send_event(self, data: str, event: str | None = None) -> None:
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        payload = text.encode("utf-8")
        self._write(f"{len(payload):x}\r\n".encode("ascii") + payload + b"\r\n")

    def _end_events(self) -> None:
        self._write(b"0\r\n\r\n")

    # ------------------------------------------------------------------ dispatch

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        raw = self._read_body()
        path = _route(self.path)
        try:
            if method == "POST" and path == "/chat/completions":
                self._json_endpoint(raw, self._chat)
            elif method == "POST" and path == "/responses":
                self._json_endpoint(raw, self._responses)
            elif method == "GET" and path == "/models":
                self._send_json(200, {"object": "list", "data": self._models()})
            elif method == "GET" and path.startswith("/models/"):
                wanted = path[len("/models/") :]
                found = [m for m in self._models() if m["id"] == wanted]
                if found:
                    self._send_json(200, found[0])
                else:
                    self._send_error_json(
                        404, f"The model {wanted!r} does not exist", "model_not_found"
                    )
            elif method == "GET" and path == "/_requests":
                self._send_json(200, self.director.requests())
            elif method == "POST" and path == "/_reset":
                self.director.reset()
                self._send_json(200, {"ok": True})
            else:
                self._send_error_json(404, f"errand replay: no route for {method} {path}")
        except (_ClientGone, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
            log.debug("client went away during %s %s", method, path)

    def _models(self) -> list[JSONObj]:
        return [
            {"id": s.name, "object": "model", "created": 0, "owned_by": OWNER}
            for s in self.director.scenarios
        ]

    def _json_endpoint(self, raw: bytes, handle: Callable[[JSONObj, int], None]) -> None:
        try:
            body = json.loads(raw.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.director.record(raw.decode("utf-8", "replace"))
            self._send_error_json(400, f"errand replay: the request body is not JSON: {exc}")
            return
        self.director.record(body)
        if not isinstance(body, dict):
            self._send_error_json(400, "errand replay: the request body must be a JSON object")
            return
        handle(cast(JSONObj, body), len(raw))

    @staticmethod
    def _sleep_ms(ms: int) -> None:
        if ms > 0:
            time.sleep(ms / 1000)

    def _chat(self, body: JSONObj, raw_size: int) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list):
            self._send_error_json(400, "errand replay: 'messages' must be a list")
            return
        history = chat_history(messages)
        plan = self.director.plan(body.get("model"), history)
        if isinstance(plan, _Failure):
            self._send_json(plan.status, plan.body, plan.headers)
            return
        counts = _counts(plan.turn, raw_size, history.prefix_chars)
        model = str(body.get("model", plan.scenario.name))
        completion_id = f"chatcmpl-replay-{self.director.next_serial()}"
        created = int(time.time())
        if not body.get("stream"):
            self._sleep_ms(plan.turn.delay_ms)
            self._send_json(
                200,
                chat_completion(
                    plan, model=model, counts=counts, completion_id=completion_id, created=created
                ),
            )
            return
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self._start_events()
        self._sleep_ms(plan.turn.delay_ms)
        chunks = chat_chunks(
            plan,
            model=model,
            counts=counts,
            completion_id=completion_id,
            created=created,
            include_usage=include_usage,
        )
        for i, chunk in enumerate(chunks):
            if i:
                self._sleep_ms(plan.turn.chunk_delay_ms)
            self._send_event(_dumps(chunk))
        self._send_event("[DONE]")
        self._end_events()

    def _responses(self, body: JSONObj, raw_size: int) -> None:
        given = body.get("input")
        if isinstance(given, str):
            items: list[object] = [{"role": "user", "content": given}]
        elif isinstance(given, list):
            items = list(given)
        elif given is None:
            items = []
        else:
            self._send_error_json(400, "errand replay: 'input' must be a string or a list")
            return
        previous_chars = 0
        previous_id = body.get("previous_response_id")
        if previous_id is not None:
            earlier = self.director.stored_response(str(previous_id))
            if earlier is None:
                self._send_error_json(
                    400,
                    f"Previous response with id '{previous_id}' not found.",
                    "previous_response_not_found",
                )
                return
            previous_chars = len(_dumps(earlier))
            items = earlier + items
        history = responses_history(items)
        plan = self.director.plan(body.get("model"), history)
        if isinstance(plan, _Failure):
            self._send_json(plan.status, plan.body, plan.headers)
            return
        counts = _counts(plan.turn, raw_size + previous_chars, history.prefix_chars)
        output = response_output(plan, _responses_options(body))
        response_id = f"resp_replay_{self.director.next_serial():06d}"
        self.director.store_response(response_id, items + list(output))
        created = int(time.time())
        if not body.get("stream"):
            self._sleep_ms(plan.turn.delay_ms)
            self._send_json(
                200,
                response_object(
                    body,
                    response_id=response_id,
                    created=created,
                    status="completed",
                    output=output,
                    usage=_responses_usage(counts),
                ),
            )
            return
        self._start_events()
        self._sleep_ms(plan.turn.delay_ms)
        events = response_events(
            body, plan, response_id=response_id, created=created, output=output, counts=counts
        )
        for i, event in enumerate(events):
            if i:
                self._sleep_ms(plan.turn.chunk_delay_ms)
            self._send_event(_dumps(event), event["type"])
        self._end_events()


# --------------------------------------------------------------------------- public API


def _loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"replay server binds only to loopback, not {host!r}") from None
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"replay server binds only to an IPv4 loopback address, not {host!r}")
    return host


class ReplayServer:
    """A scripted model server on loopback, serving from a background daemon thread.

    ``scenarios`` may be :class:`Scenario` objects, scenario dicts, paths of
    scenario files or folders, or one path.
    """

    def __init__(
        self,
        scenarios: ScenarioSource,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.scenarios: list[Scenario] = _collect(scenarios)
        self._host = _loopback(host)
        self._port = port
        self._director = _Director(self.scenarios)
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ReplayServer:
        if self._server is not None:
            raise RuntimeError("replay server already started")
        server = _HTTPServer((self._host, self._port), self._director)
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"errand-replay-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        log.info("replay model server on %s", self.url)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("replay server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give the ``openai`` client, ending in ``/v1``."""
        return f"http://{self._host}:{self.port}/v1"

    @property
    def requests(self) -> list[Any]:
        """Every request body received so far (copies), in order of arrival.

        A body that was not JSON is logged as its text.
        """
        return self._director.requests()

    def reset(self) -> None:
        """Same as ``POST /_reset``."""
        self._director.reset()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m errand.replay SCENARIO... [--port N]``: serve until killed."""
    parser = argparse.ArgumentParser(
        prog="python -m errand.replay",
        description="Serve scripted model turns over the OpenAI HTTP API (not a real model).",
    )
    parser.add_argument("scenarios", nargs="+", type=Path, help="scenario files or folders")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    args = parser.parse_args(argv)
    try:
        server = ReplayServer(list(args.scenarios), port=args.port).start()
    except (ScenarioError, OSError) as exc:
        print(f"errand replay: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"replay model server on {server.url} (scripted, not a real model)", file=sys.stderr)
    sys.stderr.flush()
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
