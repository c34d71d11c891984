"""Scenario files: the format the package docstring describes, parsed strictly."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Final, cast

JSONObj = dict[str, Any]


def dumps(value: object) -> str:
    """Compact JSON, as the wire and the size counts use it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class ScenarioError(ValueError):
    """A scenario file or object does not follow the format in the package docstring."""


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


def collect(source: ScenarioSource) -> list[Scenario]:
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
