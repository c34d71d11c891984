"""The scripted model: plays its turns in order, streams text, counts tokens, says it is
scripted, and fails clearly past its last turn."""

from __future__ import annotations

import asyncio
import json

import pytest

from errand.config.settings import Settings
from errand.frontends import demo
from errand.models.base import (
    AssistantMsg,
    Item,
    Model,
    ModelError,
    SystemMsg,
    ToolResult,
    ToolSpec,
    UserMsg,
)
from errand.models.scripted import ScriptedCall, ScriptedModel, ScriptedTurn, load_script

SHELL = ToolSpec(name="shell", description="run a command", parameters={"type": "object"})
TURNS = [
    ScriptedTurn(
        text="Let me run the tests first.",
        tool_calls=[ScriptedCall("shell", {"command": "python3 -m unittest -v"})],
    ),
    ScriptedTurn(tool_calls=[ScriptedCall("shell", {"command": "ls"}), ScriptedCall("shell")]),
    ScriptedTurn(text="Done: a long-wordwithoutanyspacesatall answer.\n\nBye."),
]


def _play(model: ScriptedModel, items: list[Item]) -> tuple[list[str], list[Item]]:
    """Run the turns the way the agent loop does, answering each tool call."""
    streamed: list[str] = []

    async def go() -> None:
        while True:
            turn = await model.complete(items, [SHELL], streamed.append)
            items.append(turn.message)
            if not turn.message.tool_calls:
                return
            for call in turn.message.tool_calls:
                items.append(ToolResult(call_id=call.id, name=call.name, output="ok\n" * 50))

    asyncio.run(go())
    return streamed, items


def test_turns_play_in_order_with_tool_calls_as_json() -> None:
    model = ScriptedModel(TURNS)
    streamed, items = _play(model, [SystemMsg("sys"), UserMsg("fix it")])
    replies = [item for item in items if isinstance(item, AssistantMsg)]
    assert [r.text for r in replies] == [t.text for t in TURNS]
    first, second, third = replies
    assert [(c.name, json.loads(c.arguments)) for c in first.tool_calls] == [
        ("shell", {"command": "python3 -m unittest -v"})
    ]
    assert [json.loads(c.arguments) for c in second.tool_calls] == [{"command": "ls"}, {}]
    ids = [c.id for r in replies for c in r.tool_calls]
    assert len(set(ids)) == len(ids) == 3
    assert third.tool_calls == []
    assert "".join(streamed) == TURNS[0].text + TURNS[2].text
    assert len(streamed) > 4 and all(len(piece) <= 16 for piece in streamed)


def test_usage_and_finish_reason_are_plausible() -> None:
    model = ScriptedModel(TURNS)
    items: list[Item] = [UserMsg("fix it")]

    async def turn() -> tuple[int, int, int, str | None]:
        result = await model.complete(items, [SHELL])
        items.append(result.message)
        for call in result.message.tool_calls:
            items.append(ToolResult(call_id=call.id, name=call.name, output="x" * 400))
        u = result.usage
        return u.input_tokens, u.cached_tokens, u.output_tokens, result.finish_reason

    first, second, third = (asyncio.run(turn()) for _ in TURNS)
    assert first[1] == 0 and first[0] > 0 and first[2] >= 1
    assert first[3] == second[3] == "tool_calls" and third[3] == "stop"
    assert first[0] < second[0] < third[0]
    assert 0 < second[1] < second[0] and second[1] < third[1] < third[0]
    assert third[2] == len(TURNS[2].text) // 4


def test_it_says_it_is_scripted_and_fails_past_its_script() -> None:
    model: Model = ScriptedModel(TURNS[2:])
    assert model.name == "scripted"
    items: list[Item] = [UserMsg("q"), AssistantMsg(text="an earlier answer")]
    with pytest.raises(ModelError, match=r"scripted model \(not a real model\) has no turn 2"):
        asyncio.run(model.complete(items, []))
    asyncio.run(model.close())


def test_a_resumed_conversation_goes_on_where_it_stopped() -> None:
    items: list[Item] = [UserMsg("fix it")]
    _, items = _play(ScriptedModel([TURNS[0], ScriptedTurn(text="first stop")]), items)
    items.append(UserMsg("also this"))
    third = asyncio.run(ScriptedModel(TURNS).complete(items, []))
    assert third.message.text == TURNS[2].text


def test_load_script_is_strict() -> None:
    script = load_script('{"turns": [{"text": "hi", "tool_calls": [{"name": "shell"}]}]}')
    assert script.turns == [ScriptedTurn("hi", [ScriptedCall("shell")])]
    with pytest.raises(ModelError, match="bad model script"):
        load_script('{"turns": [{"content": "a replay-server key"}]}')
    with pytest.raises(ModelError, match="bad model script"):
        load_script("not json")


def test_the_demo_script_loads_and_ends_with_a_report() -> None:
    turns = demo.script().turns
    assert [c.name for t in turns for c in t.tool_calls] == [
        "shell",
        "shell",
        "apply_patch",
        "shell",
    ]
    assert turns[-1].text and not turns[-1].tool_calls
    model = demo.model_factory(Settings())
    assert model.name == "scripted"
