"""Decode one JSON-RPC message body and check its envelope, turning everything a
client can get wrong into a :class:`Refusal` (an error response to send) instead
of an exception. Pure.

The JSON is parsed with the standard library, bounded: an integer of more digits
than Python converts is kept as a :class:`HugeInt` marker and refused with its
place named, nesting deeper than :data:`MAX_DEPTH` is refused, and ``NaN`` or
``Infinity`` (not JSON) is a parse error. When a body can't be parsed, the id of
the request is still recovered when the text has one at its top level, so the
client's pending request gets its answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from errand.wire.words import clip, format_path

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
SERVER_NOT_INITIALIZED: Final = -32002
REQUEST_FAILED: Final = -32803
CLIENT_ERRORS: Final = frozenset(
    {PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, SERVER_NOT_INITIALIZED}
)
"""Codes that mean the client sent something wrong: logged in one line, no trace."""

MAX_DEPTH: Final = 128
"""Deepest nesting of arrays and objects accepted in a message."""
MAX_INT_DIGITS: Final = 4300
"""Python's own limit for converting digits to an int."""
"""Characters of an error message sent to the client or written to the log."""
_RECOVERY_TOKENS: Final = 1_000_000

MsgId = int | str


@dataclass(frozen=True, slots=True)
class HugeInt:
    """An integer literal too long to convert; ``digits`` says how long."""

    digits: int


Kind = Literal["request", "notification", "response", "invalid"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error to report. ``kind`` is what the message was: a ``request`` or an
    ``invalid`` message is answered (with ``"id": null`` when ``msg_id`` is None); a
    bad ``notification`` or ``response`` from the client gets no answer, as JSON-RPC
    says, and is only logged."""

    msg_id: MsgId | None
    code: int
    message: str
    method: str | None = None
    kind: Kind = "invalid"

    @property
    def answered(self) -> bool:
        return self.kind in ("request", "invalid")


def error_response(msg_id: MsgId | None, code: int, message: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "error": {"code": code, "message": clip(message)},
    }


# --- parsing -----------------------------------------------------------------------


def _parse_int(digits: str) -> int | HugeInt:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        return HugeInt(len(digits.lstrip("-")))
    return int(digits)


def _parse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(body: bytes) -> dict[str, Any] | Refusal:
    """The message as a dict, or why it can't be handled."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        found = recover(body.decode("utf-8", "replace"))
        return Refusal(
            found.msg_id,
            PARSE_ERROR,
            f"the message is not valid UTF-8 (byte {exc.start}); LSP messages are UTF-8 JSON",
            found.method,
        )
    try:
        message = json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)
    except RecursionError:
        found = recover(text)
        code = INVALID_PARAMS if found.deep_in == "params" else INVALID_REQUEST
        kind: Kind = "invalid"
        if found.msg_id is not None:
            kind = "request"
        elif found.method is not None:
            kind = "notification"
        return Refusal(
            found.msg_id,
            code,
            f"{found.method or 'message'}: {found.deep_in or 'the message'} is nested "
            f"deeper than {MAX_DEPTH} levels",
            found.method,
            kind,
        )
    except ValueError as exc:
        found = recover(text)
        return Refusal(
            found.msg_id, PARSE_ERROR, f"the message is not valid JSON: {exc}", found.method
        )
    if not isinstance(message, dict):
        return Refusal(
            None,
            INVALID_REQUEST,
            f"a message must be one JSON object, not {_kind(message)}"
            + ("; batches are not supported" if isinstance(message, list) else ""),
        )
    return check_envelope(message)


def check_envelope(message: dict[str, Any]) -> dict[str, Any] | Refusal:
    method = message.get("method")
    raw_id = message.get("id")
    has_id, has_method = "id" in message, "method" in message
    msg_id = raw_id if _valid_id(raw_id) else None
    where = method if isinstance(method, str) else None

    def invalid(problem: str) -> Refusal:
        return Refusal(msg_id, INVALID_REQUEST, problem, where, "invalid")

    if has_id and not _valid_id(raw_id):
        return invalid(f"id must be a string or an integer, not {_kind(raw_id)}")
    if message.get("jsonrpc") != "2.0":
        return invalid('jsonrpc must be "2.0"')
    if has_method and not isinstance(method, str):
        return invalid(f"method must be a string, not {_kind(method)}")
    if not has_method and not has_id:
        return invalid("a message needs a method (or an id, for a response)")
    if not has_method and "result" not in message and "error" not in message:
        return invalid("a response needs a result or an error")
    params = message.get("params")
    if has_method and params is not None and not isinstance(params, dict | list):
        return invalid(f"params must be an object or an array, not {_kind(params)}")
    bad = find_bad_value(message)
    if bad is not None:
        path, problem = bad
        kind: Kind = "request" if has_id and has_method else "notification"
        if not has_method:
            kind = "response"
        code = INVALID_PARAMS if path[:1] == ["params"] else INVALID_REQUEST
        return Refusal(msg_id, code, _place(message, path, problem), where, kind)
    return message


def _place(message: dict[str, Any], path: list[str | int], problem: str) -> str:
    """``problem`` at ``path``, said the way errand's commands say it when it is in
    a command's argument object."""
    params = message.get("params")
    command = params.get("command") if isinstance(params, dict) else None
    if (
        message.get("method") == "workspace/executeCommand"
        and isinstance(command, str)
        and path[:3] == ["params", "arguments", 0]
    ):
        inner = format_path(path[3:]) if len(path) > 3 else "the argument"
        return f"{clip(command, 100)}: invalid arguments: {inner} {problem}"
    method = message.get("method")
    where = clip(method, 100) if isinstance(method, str) else "message"
    return f"{where}: {format_path(path)} {problem}"


def _valid_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | HugeInt | float):
        return "a number" if not isinstance(value, HugeInt) else "an integer this long"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def find_bad_value(value: Any) -> tuple[list[str | int], str] | None:
    """The place and the problem of the first value errand refuses anywhere in a
    message: nesting deeper than :data:`MAX_DEPTH`, an integer too long to convert.
    Iterative, so any depth is safe."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, HugeInt):
            return path, f"is an integer of {item.digits} digits, far out of range"
        if isinstance(item, dict | list):
            if len(path) >= MAX_DEPTH:
                return path, f"is nested deeper than {MAX_DEPTH} levels"
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, [*path, key]) for key, child in pairs)
    return None


# --- recovering the id of a message that can't be parsed ---------------------------


@dataclass(frozen=True, slots=True)
class Recovered:
    msg_id: MsgId | None = None
    method: str | None = None
    deep_in: str | None = None
    """The top-level member where nesting went past :data:`MAX_DEPTH`."""


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+', re.DOTALL)


def recover(text: str) -> Recovered:
    """The top-level ``id`` and ``method`` of a message that could not be parsed,
    when its text has them, and where it is nested too deeply. Scans tokens with a
    depth counter, never recursing; gives up after a bounded number of tokens."""
    depth = 0
    key: str | None = None
    expect_value = False
    values: dict[str, Any] = {}
    deep_in: str | None = None
    for count, token in enumerate(_tokens(text)):
        if count > _RECOVERY_TOKENS:
            break
        if token in ("{", "["):
            depth += 1
            if depth > MAX_DEPTH and deep_in is None:
                deep_in = key or "message"
            expect_value = False
            continue
        if token in ("}", "]"):
            depth -= 1
            continue
        if depth != 1:
            continue
        if token == ":":
            expect_value = True
            continue
        if token == ",":
            key, expect_value = None, False
            continue
        if expect_value and key in ("id", "method"):
            values[key] = _scalar(token)
            expect_value = False
        elif not expect_value and token.startswith('"'):
            key = _scalar(token) if len(token) < 100 else None
    msg_id = values.get("id")
    method = values.get("method")
    return Recovered(
        msg_id if _valid_id(msg_id) else None,
        method if isinstance(method, str) else None,
        deep_in,
    )


def _tokens(text: str) -> Iterator[str]:
    for match in _TOKEN.finditer(text):
        yield match.group()


def _scalar(token: str) -> Any:
    if len(token) > 200:
        return None
    try:
        return json.loads(token)
    except ValueError:
        return None
