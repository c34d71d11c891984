"""The Responses adapter against the scripted server, through the real ``openai`` client.

Request bodies the server logged are validated against the ``openai`` package's own
parameter types, so an input item the real service would not accept fails here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import openai
import pydantic
import pytest
from openai.types.responses import FunctionToolParam, ResponseInputParam

from errand.models import create_model
from errand.models.base import (
    AssistantMsg,
    Item,
    ModelError,
    ModelTurn,
    SystemMsg,
    ToolResult,
    ToolSpec,
    UserMsg,
    decode_items,
    encode_items,
)
from errand.models.openai_responses import ResponsesModel, _absorb, _finish, _Turn
from support.replay import ReplayServer

SHELL = ToolSpec(
    name="shell",
    description="Run a command.",
    parameters={
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
)

REPORT = "Fixed `add` in 【F:src/math.py†L3】; the tests pass 【c1-1†L1-L2】."

FIX = {
    "name": "fix",
    "match": "fix the test",
    "turns": [
        {
            "content": "Running the tests first.",
            "reasoning": "The user wants the failing test fixed; run it.",
            "tool_calls": [{"name": "shell", "arguments": {"command": "pytest -q"}}],
        },
        {"reasoning": "One test fails in add; read it.", "content": REPORT},
    ],
}
REFUSE = {
    "name": "refuse",
    "match": "something forbidden",
    "turns": [{"refusal": "I can't help with that."}],
}
FLAKY = {
    "name": "flaky",
    "match": "rate limited",
    "turns": [
        {"content": "Done after all.", "error": {"status": 429, "times": 2, "retry_after_ms": 5}}
    ],
}
DOWN = {
    "name": "down",
    "match": "server down",
    "turns": [
        {
            "content": "never served",
            "error": {
                "status": 500,
                "times": 10,
                "message": "The server had an error",
                "retry_after_ms": 5,
            },
        }
    ],
}

INPUT = pydantic.TypeAdapter(ResponseInputParam)
TOOL = pydantic.TypeAdapter(FunctionToolParam)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer([FIX, REFUSE, FLAKY, DOWN]) as srv:
        yield srv


def _model(server: ReplayServer, max_retries: int = 0) -> ResponsesModel:
    client = openai.AsyncOpenAI(base_url=server.url, api_key="test-key", max_retries=max_retries)
    return ResponsesModel(client, "gpt-test")


def _run(model: ResponsesModel, items: list[Item], tools: list[ToolSpec]) -> tuple[ModelTurn, str]:
    streamed: list[str] = []

    async def go() -> ModelTurn:
        try:
            return await model.complete(items, tools, streamed.append)
        finally:
            await model.close()

    return asyncio.run(go()), "".join(streamed)


def _requests(server: ReplayServer, model: str = "gpt-test") -> list[dict[str, Any]]:
    return [r for r in server.requests if isinstance(r, dict) and r.get("model") == model]


def test_streamed_conversation_carries_reasoning_and_tool_calls(server: ReplayServer) -> None:
    server.reset()
    items: list[Item] = [
        SystemMsg("You are errand's agent."),
        UserMsg("Please fix the test in src/math.py."),
    ]
    first, streamed = _run(_model(server), items, [SHELL])

    assert first.message.text == "Running the tests first."
    assert streamed == first.message.text  # text reached on_text, in pieces, in order
    assert first.finish_reason == "tool_calls"
    assert first.refusal is None
    (call,) = first.message.tool_calls
    assert call.id == "call_v0_t0_0"
    assert call.name == "shell"
    assert json.loads(call.arguments) == {"command": "pytest -q"}
    (reasoning,) = first.message.opaque
    assert reasoning["type"] == "reasoning"
    assert reasoning["id"] == "rs_v0_t0"
    assert str(reasoning["encrypted_content"]).startswith("rpl1.")
    assert first.usage.input_tokens > 0
    assert first.usage.output_tokens > 0
    assert first.usage.cached_tokens == 0

    # The conversation survives storage (follow-ups resume from the stored bytes).
    items.append(first.message)
    items.append(ToolResult(call_id=call.id, name="shell", output="exit 1\n1 failed"))
    items = decode_items(encode_items(items))
    second, streamed2 = _run(_model(server), items, [SHELL])

    assert second.message.text == REPORT
    assert streamed2 == REPORT
    assert second.message.tool_calls == []
    assert second.finish_reason == "stop"
    assert second.usage.cached_tokens > 0  # the server saw a history to "cache"
    assert second.usage.input_tokens > first.usage.input_tokens

    body1, body2 = _requests(server)
    for body in (body1, body2):
        assert body["stream"] is True
        assert body["store"] is False
        assert body["include"] == ["reasoning.encrypted_content"]
        assert body["instructions"] == "You are errand's agent."
        assert "previous_response_id" not in body
        INPUT.validate_python(body["input"])
        for tool in body["tools"]:
            TOOL.validate_python(tool)
        assert body["tools"][0]["name"] == "shell"
    assert body1["input"] == [
        {"type": "message", "role": "user", "content": "Please fix the test in src/math.py."}
    ]
    # The second request sends the reasoning item back verbatim, before the turn's
    # message and call, then the call's output.
    sent = body2["input"]
    assert [i["type"] for i in sent] == [
        "message",
        "reasoning",
        "message",
        "function_call",
        "function_call_output",
    ]
    assert sent[1] == reasoning
    assert sent[2] == {"type": "message", "role": "assistant", "content": first.message.text}
    assert sent[3]["call_id"] == call.id
    assert sent[3]["arguments"] == call.arguments
    assert sent[4] == {
        "type": "function_call_output",
        "call_id": call.id,
        "output": "exit 1\n1 failed",
    }


def test_later_system_message_becomes_developer_message(server: ReplayServer) -> None:
    server.reset()
    items: list[Item] = [
        SystemMsg("rule one"),
        SystemMsg("rule two"),
        UserMsg("Please fix the test."),
        SystemMsg("Context is nearly full."),
    ]
    turn, _ = _run(_model(server), items, [])
    assert turn.message.tool_calls  # turn 0 of the "fix" script
    (body,) = _requests(server)
    assert body["instructions"] == "rule one\n\nrule two"
    assert "tools" not in body
    assert body["input"][1] == {
        "type": "message",
        "role": "developer",
        "content": "Context is nearly full.",
    }
    INPUT.validate_python(body["input"])


def test_refusal_surfaces_on_the_turn(server: ReplayServer) -> None:
    turn, streamed = _run(_model(server), [UserMsg("do something forbidden")], [SHELL])
    assert turn.refusal == "I can't help with that."
    assert turn.message.text == ""
    assert streamed == ""
    assert turn.message.tool_calls == []


def test_empty_turn_keeps_its_place_in_the_conversation(server: ReplayServer) -> None:
    server.reset()
    items: list[Item] = [UserMsg("do something forbidden"), AssistantMsg(), UserMsg("please?")]
    with pytest.raises(ModelError, match="HTTP 400"):
        _run(_model(server), items, [])
    (body,) = _requests(server)
    assert body["input"][1] == {"type": "message", "role": "assistant", "content": ""}


def test_rate_limit_is_retried_by_the_client(server: ReplayServer) -> None:
    server.reset()
    turn, _ = _run(_model(server, max_retries=2), [UserMsg("rate limited, still")], [])
    assert turn.message.text == "Done after all."
    assert len(_requests(server)) == 3


def test_server_error_after_retries_is_a_model_error(server: ReplayServer) -> None:
    server.reset()
    with pytest.raises(ModelError) as caught:
        _run(_model(server, max_retries=1), [UserMsg("the server down again")], [])
    assert "HTTP 500" in str(caught.value)
    assert "The server had an error" in str(caught.value)
    assert len(_requests(server)) == 2


def test_create_model_builds_a_responses_model(server: ReplayServer) -> None:
    server.reset()
    model = create_model("responses", "fix", base_url=server.url, api_key="k", max_retries=0)
    assert isinstance(model, ResponsesModel)

    async def go() -> ModelTurn:
        try:
            return await model.complete([UserMsg("anything")], [SHELL])
        finally:
            await model.close()

    turn = asyncio.run(go())
    assert turn.message.tool_calls[0].name == "shell"


def _event(kind: str, **fields: Any) -> SimpleNamespace:
    return SimpleNamespace(type=kind, **fields)


def test_incomplete_failed_and_truncated_streams() -> None:
    usage = SimpleNamespace(
        input_tokens=40, output_tokens=7, input_tokens_details=SimpleNamespace(cached_tokens=8)
    )
    turn = _Turn()
    _absorb(turn, _event("response.output_text.delta", delta="partial"), None)
    details = SimpleNamespace(reason="max_output_tokens")
    response = SimpleNamespace(usage=usage, incomplete_details=details)
    _absorb(turn, _event("response.incomplete", response=response), None)
    result = _finish(turn)
    assert result.finish_reason == "max_output_tokens"
    assert result.message.text == "partial"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (40, 7)
    assert result.usage.cached_tokens == 8

    error = SimpleNamespace(message="overloaded", code="server_error")
    failed = _event("response.failed", response=SimpleNamespace(error=error, usage=None))
    with pytest.raises(ModelError, match="overloaded"):
        _absorb(_Turn(), failed, None)

    cut = _Turn()
    _absorb(cut, _event("response.output_text.delta", delta="half"), None)
    with pytest.raises(ModelError, match="ended before"):
        _finish(cut)
