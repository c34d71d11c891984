"""The scripted model server, driven by the real ``openai`` client (sync and async).

Besides the client's own parsing (which is lenient), raw bodies and events are
validated strictly against the ``openai`` package's pydantic types, so a missing
or mistyped field fails here and not against the real service.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import typing
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from support.replay import ReplayServer, Scenario, ScenarioError, load_scenarios

SHELL_TOOL_CHAT: Any = {
    "type": "function",
    "function": {
        "name": "shell",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
    },
}
SHELL_TOOL_RESPONSES: Any = {
    "type": "function",
    "name": "shell",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
    "strict": False,
}

FIX_TEST = {
    "name": "fix-test",
    "match": "failing test",
    "turns": [
        {
            "content": "Let me look at the repository first.",
            "reasoning": "The user wants the failing test fixed; I should run it.",
            "tool_calls": [
                {"name": "shell", "arguments": {"command": "pytest -x tests/test_math.py"}},
                {"name": "shell", "arguments": {"command": "cat src/math.py"}},
            ],
        },
        {
            "tool_calls": [
                {
                    "name": "apply_patch",
                    "arguments": {
                        "patch": "*** Begin Patch\n*** Update File: src/math.py\n"
                        '@@\n-    return a - b\n+    return a + b\n*** End Patch\n"quoted"'
                    },
                }
            ]
        },
        {"content": "Fixed `add` in 【F:src/math.py†L3-L3】; tests pass."},
    ],
}


def _client(server: ReplayServer, **kwargs: Any) -> OpenAI:
    kwargs.setdefault("max_retries", 0)
    return OpenAI(base_url=server.url, api_key="test-key", **kwargs)


def _post_raw(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _sse(raw: bytes) -> Iterator[tuple[str | None, str]]:
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        event = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        yield event, "\n".join(data)


def _event_classes() -> dict[str, Any]:
    union = typing.get_args(ResponseStreamEvent)[0]
    classes = {}
    for cls in typing.get_args(union):
        (literal,) = typing.get_args(cls.model_fields["type"].annotation)
        classes[literal] = cls
    return classes


EVENT_CLASSES = _event_classes()


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer([FIX_TEST]) as srv:
        yield srv


# --------------------------------------------------------------------------- chat


def test_chat_non_streamed_tool_calls_and_usage(server: ReplayServer) -> None:
    client = _client(server)
    messages: Any = [{"role": "user", "content": "please fix the failing test"}]
    completion = client.chat.completions.create(
        model="gpt-anything", messages=messages, tools=[SHELL_TOOL_CHAT]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look at the repository first."
    calls = choice.message.tool_calls
    assert calls is not None
    assert [(c.id, c.function.name) for c in calls] == [
        ("call_v0_t0_0", "shell"),
        ("call_v0_t0_1", "shell"),
    ]
    function = calls[0].function  # type: ignore[union-attr]
    assert json.loads(function.arguments) == {"command": "pytest -x tests/test_math.py"}
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    reasoning = "The user wants the failing test fixed; I should run it."
    assert usage.completion_tokens_details.reasoning_tokens == len(reasoning) // 4
    # The raw body passes strict validation, and the server logged what it got.
    status, raw = _post_raw(f"{server.url}/chat/completions", {"model": "x", "messages": messages})
    assert status == 200
    ChatCompletion.model_validate_json(raw)
    assert server.requests[0]["messages"] == messages
    assert server.requests[0]["tools"][0]["function"]["name"] == "shell"


def test_chat_streamed_tool_calls_arrive_in_pieces_with_usage(server: ReplayServer) -> None:
    client = _client(server)
    stream = client.chat.completions.create(
        model="fix-test",
        messages=[{"role": "user", "content": "go"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content = ""
    calls: dict[int, dict[str, str]] = {}
    pieces: dict[int, int] = {}
    finish = None
    for chunk in chunks[:-1]:
        assert chunk.usage is None
        (choice,) = chunk.choices
        content += choice.delta.content or ""
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            assert delta.function is not None
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""
            pieces[delta.index] = pieces.get(delta.index, 0) + 1
    assert content == "Let me look at the repository first."
    assert finish == "tool_calls"
    assert calls[0] == {
        "id": "call_v0_t0_0",
        "name": "shell",
        "arguments": '{"command":"pytest -x tests/test_math.py"}',
    }
    assert calls[1]["arguments"] == '{"command":"cat src/math.py"}'
    assert min(pieces.values()) >= 3  # the head chunk plus several argument pieces
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 0
    assert last.usage.completion_tokens > 0


def test_chat_stream_raw_wire_format_and_helper(server: ReplayServer) -> None:
    status, raw = _post_raw(
        f"{server.url}/chat/completions",
        {"model": "fix-test", "messages": [{"role": "user", "content": "go"}], "stream": True},
    )
    assert status == 200
    events = list(_sse(raw))
    assert events[-1] == (None, "[DONE]")
    for _, data in events[:-1]:
        chunk = ChatCompletionChunk.model_validate_json(data)
        assert chunk.usage is None  # include_usage not asked for
    # The SDK's own accumulating helper rebuilds the same message.
    with _client(server).chat.completions.stream(
        model="fix-test", messages=[{"role": "user", "content": "go"}]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls is not None
    assert [c.function.arguments for c in calls] == [
        '{"command":"pytest -x tests/test_math.py"}',
        '{"command":"cat src/math.py"}',
    ]


def test_chat_multi_turn_conversation_advances(server: ReplayServer) -> None:
    client = _client(server)
    messages: list[Any] = [{"role": "user", "content": "fix the failing test"}]
    seen: list[str] = []
    cached: list[int] = []
    prompt: list[int] = []
    for _ in range(3):
        completion = client.chat.completions.create(model="m", messages=messages)
        message = completion.choices[0].message
        assert completion.usage is not None
        assert completion.usage.prompt_tokens_details is not None
        cached.append(completion.usage.prompt_tokens_details.cached_tokens or 0)
        prompt.append(completion.usage.prompt_tokens)
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            seen.append(f"final:{message.content}")
            break
        for call in message.tool_calls:
            seen.append(f"{call.function.name}:{call.id}")  # type: ignore[union-attr]
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "exit 0"})
    assert seen == [
        "shell:call_v0_t0_0",
        "shell:call_v0_t0_1",
        "apply_patch:call_v0_t1_0",
        "final:Fixed `add` in 【F:src/math.py†L3-L3】; tests pass.",
    ]
    assert cached[0] == 0
    assert 0 < cached[1] < cached[2]
    assert prompt[0] < prompt[1] < prompt[2]
    assert all(c <= p for c, p in zip(cached, prompt, strict=True))


def test_chat_refusal() -> None:
    scenario = {"name": "no", "turns": [{"refusal": "I can't help with that."}]}
    with ReplayServer([scenario]) as srv:
        client = _client(srv)
        completion = client.chat.completions.create(
            model="no", messages=[{"role": "user", "content": "x"}]
        )
        message = completion.choices[0].message
        assert (message.content, message.refusal) == (None, "I can't help with that.")
        assert completion.choices[0].finish_reason == "stop"
        stream = client.chat.completions.create(
            model="no", messages=[{"role": "user", "content": "x"}], stream=True
        )
        refusal = "".join(c.choices[0].delta.refusal or "" for c in stream if c.choices)
        assert refusal == "I can't help with that."


# --------------------------------------------------------------------------- responses


def test_responses_non_streamed_function_calls_reasoning_usage(server: ReplayServer) -> None:
    client = _client(server)
    response = client.responses.create(
        model="fix-test",
        input="fix it",
        tools=[SHELL_TOOL_RESPONSES],
        include=["reasoning.encrypted_content"],
        reasoning={"effort": "low", "summary": "auto"},
        store=False,
    )
    assert response.status == "completed"
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "message", "function_call", "function_call"]
    reasoning = response.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.id == "rs_v0_t0"
    assert reasoning.encrypted_content and reasoning.encrypted_content.startswith("rpl1.")
    assert [s.text for s in reasoning.summary] == [
        "The user wants the failing test fixed; I should run it."
    ]
    assert response.output_text == "Let me look at the repository first."
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.call_id, c.id, c.name) for c in calls] == [
        ("call_v0_t0_0", "fc_v0_t0_0", "shell"),
        ("call_v0_t0_1", "fc_v0_t0_1", "shell"),
    ]
    assert json.loads(calls[1].arguments) == {"command": "cat src/math.py"}
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens > 0
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    # Strict validation of the raw body; without `include` there is no encrypted
    # content, and without reasoning.summary no summary, as with the real service.
    status, raw = _post_raw(
        f"{server.url}/responses",
        {"model": "fix-test", "input": "fix it", "tools": [SHELL_TOOL_RESPONSES]},
    )
    assert status == 200
    plain = Response.model_validate_json(raw)
    assert plain.output[0].type == "reasoning"
    assert plain.output[0].encrypted_content is None
    assert plain.output[0].summary == []


def test_responses_streamed_event_sequence(server: ReplayServer) -> None:
    client = _client(server)
    stream = client.responses.create(
        model="fix-test",
        input=[{"role": "user", "content": "fix it"}],
        tools=[SHELL_TOOL_RESPONSES],
        include=["reasoning.encrypted_content"],
        reasoning={"summary": "auto"},
        stream=True,
    )
    events = list(stream)
    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    for needed in (
        "response.reasoning_summary_text.delta",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ):
        assert needed in types
    # Arguments come in several deltas that add up to the done value.
    by_item: dict[str, str] = {}
    for event in events:
        if event.type == "response.function_call_arguments.delta":
            by_item[event.item_id] = by_item.get(event.item_id, "") + event.delta
        if event.type == "response.function_call_arguments.done":
            assert by_item[event.item_id] == event.arguments
    assert types.count("response.function_call_arguments.delta") > 4
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Let me look at the repository first."
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert done[0].type == "reasoning"
    assert done[0].encrypted_content is not None
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None
    assert completed.response.usage.input_tokens_details.cached_tokens == 0
    assert [i.type for i in completed.response.output] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]


def test_responses_raw_events_validate_strictly(server: ReplayServer) -> None:
    body = {
        "model": "fix-test",
        "input": "fix it",
        "tools": [SHELL_TOOL_RESPONSES],
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"summary": "detailed"},
        "stream": True,
    }
    status, raw = _post_raw(f"{server.url}/responses", body)
    assert status == 200
    events = list(_sse(raw))
    assert events
    for name, data in events:
        payload = json.loads(data)
        assert name == payload["type"]
        EVENT_CLASSES[payload["type"]].model_validate(payload)


def test_responses_stream_helper(server: ReplayServer) -> None:
    client = _client(server)
    with client.responses.stream(
        model="fix-test", input="fix it", tools=[SHELL_TOOL_RESPONSES]
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Let me look at the repository first."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [c.arguments for c in calls] == [
        '{"command":"pytest -x tests/test_math.py"}',
        '{"command":"cat src/math.py"}',
    ]


def test_responses_multi_turn_with_reasoning_items_and_previous_id(server: ReplayServer) -> None:
    client = _client(server)
    items: list[Any] = [{"role": "user", "content": "fix it"}]
    first = client.responses.create(
        model="fix-test", input=items, include=["reasoning.encrypted_content"], store=False
    )
    items += [item.model_dump(exclude_none=True) for item in first.output]
    items += [
        {"type": "function_call_output", "call_id": c.call_id, "output": "ok"}
        for c in first.output
        if c.type == "function_call"
    ]
    second = client.responses.create(model="fix-test", input=items)
    (call,) = second.output
    assert call.type == "function_call"
    assert (call.name, call.call_id) == ("apply_patch", "call_v0_t1_0")
    assert json.loads(call.arguments)["patch"].startswith("*** Begin Patch\n")
    assert second.usage is not None
    assert second.usage.input_tokens_details.cached_tokens > 0
    # The same third turn, reached by chaining previous_response_id.
    third = client.responses.create(
        model="fix-test",
        previous_response_id=second.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "patched"}],
    )
    assert third.output_text == "Fixed `add` in 【F:src/math.py†L3-L3】; tests pass."
    with pytest.raises(openai.BadRequestError, match="not found"):
        client.responses.create(model="fix-test", previous_response_id="resp_nope", input="x")


def test_responses_refusal_streamed() -> None:
    scenario = {"name": "no", "turns": [{"refusal": "I won't do that."}]}
    with ReplayServer([scenario]) as srv:
        events = list(_client(srv).responses.create(model="no", input="x", stream=True))
    refusal = "".join(e.delta for e in events if e.type == "response.refusal.delta")
    assert refusal == "I won't do that."
    completed = events[-1]
    assert completed.type == "response.completed"
    message = completed.response.output[0]
    assert message.type == "message"
    assert message.content[0].type == "refusal"


# --------------------------------------------------------------------------- variants


VARIANTS = {
    "name": "pick",
    "variants": [
        [
            {"tool_calls": [{"name": "shell", "arguments": {"command": "echo A"}}]},
            {"content": "A done"},
        ],
        [
            {"tool_calls": [{"name": "shell", "arguments": {"command": "echo B"}}]},
            {"content": "B done"},
        ],
    ],
}


def test_variants_round_robin_and_recovered_from_history_chat() -> None:
    with ReplayServer([VARIANTS]) as srv:
        client = _client(srv)
        conversations: list[list[Any]] = []
        commands = []
        for _ in range(3):
            messages: list[Any] = [{"role": "user", "content": "go"}]
            message = client.chat.completions.create(model="pick", messages=messages)
            message_out = message.choices[0].message
            (call,) = message_out.tool_calls or []
            commands.append(json.loads(call.function.arguments)["command"])  # type: ignore[union-attr]
            messages.append(message_out.model_dump(exclude_none=True))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "out"})
            conversations.append(messages)
        assert commands == ["echo A", "echo B", "echo A"]
        # Follow-ups in another order still land in their own variant.
        finals = [
            client.chat.completions.create(model="pick", messages=conversations[i])
            .choices[0]
            .message.content
            for i in (1, 2, 0)
        ]
        assert finals == ["B done", "A done", "A done"]


def test_variants_recovered_from_history_responses() -> None:
    with ReplayServer([VARIANTS]) as srv:
        client = _client(srv)
        histories = []
        for _ in range(2):
            items: list[Any] = [{"role": "user", "content": "go"}]
            response = client.responses.create(model="pick", input=items)
            (call,) = response.output
            assert call.type == "function_call"
            items.append(call.model_dump(exclude_none=True))
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": "x"})
            histories.append(items)
        texts = [
            client.responses.create(model="pick", input=histories[i]).output_text for i in (1, 0)
        ]
        assert texts == ["B done", "A done"]


def test_variant_recovered_from_assistant_text_when_no_ids() -> None:
    scenario = {
        "name": "talk",
        "variants": [
            [{"content": "first A"}, {"content": "second A"}],
            [{"content": "first B"}, {"content": "second B"}],
        ],
    }
    with ReplayServer([scenario]) as srv:
        client = _client(srv)
        answers = [
            client.chat.completions.create(
                model="talk", messages=[{"role": "user", "content": "hi"}]
            )
            .choices[0]
            .message.content
            for _ in range(2)
        ]
        assert answers == ["first A", "first B"]
        follow_up: Any = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "first B"},
            {"role": "user", "content": "and then?"},
        ]
        reply = client.chat.completions.create(model="talk", messages=follow_up)
        assert reply.choices[0].message.content == "second B"


def test_parallel_async_conversations_keep_their_variants() -> None:
    async def conversation(client: AsyncOpenAI) -> tuple[str, str]:
        messages: list[Any] = [{"role": "user", "content": "go"}]
        stream = await client.chat.completions.create(model="pick", messages=messages, stream=True)
        call_id, arguments = "", ""
        async for chunk in stream:
            for delta in chunk.choices[0].delta.tool_calls or []:
                call_id += delta.id or ""
                arguments += (delta.function.arguments if delta.function else None) or ""
        messages.append(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "shell", "arguments": arguments},
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": "ok"})
        final = await client.chat.completions.create(model="pick", messages=messages)
        return json.loads(arguments)["command"], final.choices[0].message.content or ""

    async def run(url: str) -> list[tuple[str, str]]:
        async with AsyncOpenAI(base_url=url, api_key="k", max_retries=0) as client:
            return await asyncio.gather(*(conversation(client) for _ in range(6)))

    with ReplayServer([VARIANTS]) as srv:
        results = asyncio.run(run(srv.url))
    assert sorted(results) == [("echo A", "A done")] * 3 + [("echo B", "B done")] * 3


# --------------------------------------------------------------------------- failures


def test_rate_limit_twice_then_served_through_client_retries() -> None:
    scenario = {
        "name": "busy",
        "variants": [
            [{"content": "v0", "error": {"status": 429, "times": 2, "retry_after_ms": 10}}],
            [{"content": "v1"}],
        ],
    }
    with ReplayServer([scenario]) as srv:
        client = _client(srv, max_retries=2)
        completion = client.chat.completions.create(
            model="busy", messages=[{"role": "user", "content": "x"}]
        )
        assert completion.choices[0].message.content == "v0"
        assert len(srv.requests) == 3  # two refused, then served
        # Failed attempts did not use up variant 0; the next conversation gets variant 1.
        completion = client.chat.completions.create(
            model="busy", messages=[{"role": "user", "content": "x"}]
        )
        assert completion.choices[0].message.content == "v1"


def test_injected_error_without_retries_surfaces_then_clears() -> None:
    scenario = {
        "name": "flaky",
        "turns": [{"content": "fine", "error": {"status": 500, "message": "boom"}}],
    }
    with ReplayServer([scenario]) as srv:
        client = _client(srv)
        with pytest.raises(openai.InternalServerError, match="boom") as caught:
            client.responses.create(model="flaky", input="x", stream=True)
        assert caught.value.status_code == 500
        assert client.responses.create(model="flaky", input="x").output_text == "fine"


def test_malformed_arguments_pass_through_verbatim() -> None:
    broken = '{"command": "ls -la", "timeout_ms": 10'
    scenario = {"name": "bad", "turns": [{"tool_calls": [{"name": "shell", "arguments": broken}]}]}
    with ReplayServer([scenario]) as srv:
        client = _client(srv)
        user: Any = [{"role": "user", "content": "x"}]
        chat = client.chat.completions.create(model="bad", messages=user)
        (call,) = chat.choices[0].message.tool_calls or []
        assert call.function.arguments == broken  # type: ignore[union-attr]
        streamed = "".join(
            d.function.arguments or ""
            for c in client.chat.completions.create(model="bad", messages=user, stream=True)
            if c.choices
            for d in c.choices[0].delta.tool_calls or []
            if d.function
        )
        assert streamed == broken
        response = client.responses.create(model="bad", input="x")
        assert response.output[0].type == "function_call"
        assert response.output[0].arguments == broken
        events = list(client.responses.create(model="bad", input="x", stream=True))
        done = [e for e in events if e.type == "response.function_call_arguments.done"]
        assert [e.arguments for e in done] == [broken]


def test_delay_holds_the_reply_back() -> None:
    scenario = {
        "name": "slow",
        "variants": [[{"content": "late", "delay_ms": 3000}], [{"content": "ok", "delay_ms": 50}]],
    }
    with ReplayServer([scenario]) as srv:
        impatient = _client(srv, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(
                model="slow", messages=[{"role": "user", "content": "x"}]
            )
        patient = _client(srv, timeout=30)
        reply = patient.chat.completions.create(
            model="slow", messages=[{"role": "user", "content": "x"}]
        )
        assert reply.choices[0].message.content == "ok"


def test_chunk_delay_spaces_out_stream_chunks() -> None:
    scenario = {"name": "drip", "turns": [{"content": "one two three", "chunk_delay_ms": 3000}]}
    with ReplayServer([scenario]) as srv:
        client = _client(srv, timeout=0.5)
        stream = client.chat.completions.create(
            model="drip", messages=[{"role": "user", "content": "x"}], stream=True
        )
        first = next(iter(stream))  # the first chunk is not delayed
        assert first.choices[0].delta.role == "assistant"
        with pytest.raises(openai.APITimeoutError):
            for _ in stream:
                pass


def test_running_out_of_turns_is_a_clear_error() -> None:
    with ReplayServer([{"name": "short", "turns": [{"content": "only"}]}]) as srv:
        client = _client(srv)
        messages: Any = [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "only"},
            {"role": "user", "content": "more?"},
        ]
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="short", messages=messages)
        assert caught.value.code == "replay_script_exhausted"
        assert "ran out" in caught.value.message
        assert "'short'" in caught.value.message
        assert "turn 1" in caught.value.message
        items: Any = [
            {"role": "user", "content": "x"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "only"}],
            },
            {"role": "user", "content": "more?"},
        ]
        with pytest.raises(openai.BadRequestError, match="ran out"):
            client.responses.create(model="short", input=items, stream=True)


# --------------------------------------------------------------------------- selection, admin


def test_scenario_selection_models_requests_and_reset() -> None:
    first = {"name": "alpha", "turns": [{"content": "from alpha"}]}
    second = {"name": "beta", "match": "refactor", "turns": [{"content": "from beta"}]}
    with ReplayServer([first, second]) as srv:
        client = _client(srv)

        def ask(model: str, text: str) -> str:
            reply = client.chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": text}],
            )
            return reply.choices[0].message.content or ""

        assert ask("beta", "anything") == "from beta"  # by model name
        assert ask("gpt-x", "please refactor this") == "from beta"  # by match
        assert ask("gpt-x", "something else") == "from alpha"  # the first
        assert [m.id for m in client.models.list()] == ["alpha", "beta"]
        assert client.models.retrieve("beta").owned_by == "errand-replay"
        with urllib.request.urlopen(srv.url.removesuffix("/v1") + "/_requests") as response:
            logged = json.loads(response.read())
        assert [r["model"] for r in logged] == ["beta", "gpt-x", "gpt-x"]
        assert logged == srv.requests
        status, _ = _post_raw(f"{srv.url}/_reset", {})
        assert status == 200
        assert srv.requests == []
        status, raw = _post_raw(f"{srv.url}/nowhere", {})
        assert status == 404
        assert "no route" in json.loads(raw)["error"]["message"]


def test_loading_files_folders_and_rejecting_bad_scenarios(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "b.json").write_text(json.dumps(FIX_TEST))
    (folder / "a.json").write_text(json.dumps([VARIANTS, {"name": "x", "turns": [{}]}]))
    loaded = load_scenarios(folder)
    assert [s.name for s in loaded] == ["pick", "x", "fix-test"]
    assert isinstance(loaded[0], Scenario)
    assert len(loaded[0].variants) == 2
    assert loaded[2].variants[0][0].tool_calls[0].arguments == (
        '{"command":"pytest -x tests/test_math.py"}'
    )
    with ReplayServer(folder) as srv:
        assert [m.id for m in _client(srv).models.list()] == ["pick", "x", "fix-test"]
    with ReplayServer([folder / "b.json", loaded[0]]) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        assert srv.url.endswith("/v1")

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "typo", "turns": [{"content": "x", "tool_call": []}]}))
    with pytest.raises(ScenarioError, match=r"typo'? turn 0: unknown key\(s\) 'tool_call'"):
        load_scenarios(bad)
    with pytest.raises(ScenarioError, match="exactly one of 'turns' and 'variants'"):
        ReplayServer([{"name": "both", "turns": [{}], "variants": [[{}]]}])
    with pytest.raises(ScenarioError, match="duplicate scenario name"):
        ReplayServer([VARIANTS, VARIANTS])
    with pytest.raises(ScenarioError, match="HTTP error status"):
        ReplayServer([{"name": "e", "turns": [{"error": {"status": 200}}]}])
    with pytest.raises(ValueError, match="loopback"):
        ReplayServer([VARIANTS], host="0.0.0.0")


def test_command_line_serves_until_terminated(tmp_path: Path) -> None:
    scenario_file = tmp_path / "demo.json"
    scenario_file.write_text(json.dumps(FIX_TEST))
    tests = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "support.replay", str(scenario_file), "--port", "0"],
        env={**os.environ, "PYTHONPATH": str(tests)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.fullmatch(
            r"replay model server on (http://127\.0\.0\.1:\d+/v1) \(scripted, not a real model\)\n",
            line,
        )
        assert found, line
        client = OpenAI(base_url=found.group(1), api_key="k", max_retries=0)
        response = client.responses.create(model="fix-test", input="x")
        assert response.output_text == "Let me look at the repository first."
    finally:
        process.terminate()
        stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert stdout == ""
