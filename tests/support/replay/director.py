"""Choosing the turn a request gets, the server's state (counters, request log,
stored responses), and what every rendered turn shares: token counts and pieces."""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from typing import Final

from support.replay.history import History, recover_variant
from support.replay.scenario import JSONObj, Scenario, Turn

_ARG_PIECE: Final = 8
_TEXT_PIECE: Final = 16
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


@dataclass(frozen=True)
class Plan:
    scenario: Scenario
    variant: int
    turn_index: int
    turn: Turn


@dataclass(frozen=True)
class Failure:
    status: int
    body: JSONObj
    headers: tuple[tuple[str, str], ...] = ()


def error_body(status: int, message: str, kind: str | None, code: str | None) -> JSONObj:
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


class Director:
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

    def plan(self, model: object, history: History) -> Plan | Failure:
        scenario = self.select(model, history.first_user_text)
        index = history.turn_index
        with self._lock:
            if index == 0:
                variant = self._round_robin.get(scenario.name, 0) % len(scenario.variants)
            else:
                variant = recover_variant(history, scenario)
            turns = scenario.variants[variant]
            if index >= len(turns):
                message = (
                    f"errand replay: the script ran out. Scenario {scenario.name!r} variant "
                    f"{variant} has {len(turns)} turn(s), and this request is at turn {index} "
                    f"({index} assistant turn(s) already in its history). This is a scripted "
                    "replay server, not a model; add turns to the scenario or end the "
                    "conversation sooner."
                )
                body = error_body(400, message, None, "replay_script_exhausted")
                return Failure(400, body, (("x-should-retry", "false"),))
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
                    body = error_body(error.status, message, error.type, error.code)
                    return Failure(error.status, body, headers)
            if index == 0:
                self._round_robin[scenario.name] = self._round_robin.get(scenario.name, 0) + 1
        return Plan(scenario, variant, index, turn)


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Counts:
    prompt: int
    completion: int
    cached: int
    reasoning: int


def count_tokens(turn: Turn, input_chars: int, prefix_chars: int) -> Counts:
    over = turn.usage
    reasoning = len(turn.reasoning or "") // 4
    visible = len(turn.content or "") + len(turn.refusal or "")
    visible += sum(len(c.name) + len(c.arguments) for c in turn.tool_calls)
    prompt = max(1, input_chars // 4)
    cached = min(prefix_chars // 4, prompt)
    reasoning = reasoning if over.reasoning_tokens is None else over.reasoning_tokens
    completion = max(1, visible // 4) + reasoning
    return Counts(
        prompt=prompt if over.prompt_tokens is None else over.prompt_tokens,
        completion=completion if over.completion_tokens is None else over.completion_tokens,
        cached=cached if over.cached_tokens is None else over.cached_tokens,
        reasoning=reasoning,
    )


def text_pieces(text: str) -> list[str]:
    """Split text into word-sized pieces (longer words into slices); joined they are ``text``."""
    pieces: list[str] = []
    for word in re.findall(r"\s*\S+|\s+", text):
        pieces += [word[i : i + _TEXT_PIECE] for i in range(0, len(word), _TEXT_PIECE)]
    return pieces


def arg_pieces(arguments: str) -> list[str]:
    """Split arguments into fixed slices (cutting through strings and escapes on purpose)."""
    return [arguments[i : i + _ARG_PIECE] for i in range(0, len(arguments), _ARG_PIECE)]


def call_id(plan: Plan, i: int) -> str:
    return f"call_v{plan.variant}_t{plan.turn_index}_{i}"
