"""The agent loop: ask the model, run the tools it calls, repeat until it answers.

An assistant message without tool calls ends the attempt; its text is the report.
Limits end it early with :class:`LimitsExceeded`; a model that refuses or says
nothing ends it with :class:`NoAnswer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from errand.agent.context import trim_tool_outputs
from errand.agent.tools import Toolbox
from errand.models.base import Item, Model, TextSink, ToolResult, TurnUsage


class LimitsExceeded(Exception):
    """A step, wall-time or token limit was reached."""


class NoAnswer(Exception):
    """The model refused or returned nothing usable."""


@dataclass(frozen=True, slots=True)
class AgentLimits:
    max_steps: int = 50
    max_wall_s: float = 1800.0
    max_tokens: int = 2_000_000
    context_chars: int = 600_000
    """Trim old tool outputs when the conversation grows past this many characters."""


@dataclass(slots=True)
class AgentProgress:
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def add(self, usage: TurnUsage) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cached_tokens += usage.cached_tokens


async def run_agent(
    model: Model,
    toolbox: Toolbox,
    items: list[Item],
    limits: AgentLimits,
    progress: AgentProgress,
    *,
    on_text: TextSink | None = None,
    on_step: Callable[[AgentProgress], None] | None = None,
) -> str:
    """Run until the model answers without calling a tool, and return that answer.

    ``items`` is extended in place, so the conversation survives for follow-ups even
    when the loop stops early. Wall time covers the whole run, model calls included.
    """
    deadline = asyncio.timeout(limits.max_wall_s)
    try:
        async with deadline:
            return await _loop(model, toolbox, items, limits, progress, on_text, on_step)
    except TimeoutError:
        if not deadline.expired():
            raise
        raise LimitsExceeded(f"time limit reached ({limits.max_wall_s:g}s)") from None


async def _loop(
    model: Model,
    toolbox: Toolbox,
    items: list[Item],
    limits: AgentLimits,
    progress: AgentProgress,
    on_text: TextSink | None,
    on_step: Callable[[AgentProgress], None] | None,
) -> str:
    start_steps = progress.steps
    while True:
        if progress.steps - start_steps >= limits.max_steps:
            raise LimitsExceeded(f"step limit reached ({limits.max_steps} steps)")
        trim_tool_outputs(items, budget_chars=limits.context_chars)
        turn = await model.complete(items, toolbox.specs, on_text)
        progress.steps += 1
        progress.add(turn.usage)
        items.append(turn.message)
        if on_step is not None:
            on_step(progress)
        if turn.refusal:
            raise NoAnswer(f"the model refused: {turn.refusal}")
        if not turn.message.tool_calls:
            report = turn.message.text.strip()
            if not report:
                raise NoAnswer("the model returned an empty answer")
            return report
        for call in turn.message.tool_calls:
            out = await toolbox.call(call)
            items.append(
                ToolResult(call_id=call.id, name=call.name, output=out.text, header=out.header)
            )
        if progress.input_tokens + progress.output_tokens >= limits.max_tokens:
            raise LimitsExceeded(f"token limit reached ({limits.max_tokens} tokens)")
