"""Chat Completions through the official ``openai`` package, streamed."""

from __future__ import annotations

import logging
from typing import Any

import openai

from errand.models.base import (
    AssistantMsg,
    Item,
    ModelError,
    ModelTurn,
    SystemMsg,
    TextSink,
    ToolCall,
    ToolResult,
    ToolSpec,
    TurnUsage,
    UserMsg,
)

log = logging.getLogger(__name__)


def to_messages(items: list[Item]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, SystemMsg):
            messages.append({"role": "system", "content": item.text})
        elif isinstance(item, UserMsg):
            messages.append({"role": "user", "content": item.text})
        elif isinstance(item, AssistantMsg):
            message: dict[str, Any] = {"role": "assistant", "content": item.text or None}
            if item.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in item.tool_calls
                ]
            messages.append(message)
        elif isinstance(item, ToolResult):
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
    return messages


def to_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]


class ChatModel:
    """One model behind an OpenAI-compatible Chat Completions endpoint."""

    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self._client = client
        self.name = model

    async def complete(
        self, items: list[Item], tools: list[ToolSpec], on_text: TextSink | None = None
    ) -> ModelTurn:
        try:
            request: dict[str, Any] = {
                "model": self.name,
                "messages": to_messages(items),
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            if tools:
                request["tools"] = to_tools(tools)
            stream = await self._client.chat.completions.create(**request)
            text: list[str] = []
            refusal: list[str] = []
            calls: dict[int, dict[str, str]] = {}
            usage = TurnUsage()
            finish: str | None = None
            async for chunk in stream:
                if chunk.usage is not None:
                    details = chunk.usage.prompt_tokens_details
                    usage = TurnUsage(
                        input_tokens=chunk.usage.prompt_tokens,
                        output_tokens=chunk.usage.completion_tokens,
                        cached_tokens=(details.cached_tokens or 0) if details else 0,
                    )
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        if on_text is not None:
                            on_text(delta.content)
                    if getattr(delta, "refusal", None):
                        refusal.append(str(delta.refusal))
                    for call in delta.tool_calls or []:
                        slot = calls.setdefault(call.index, {"id": "", "name": "", "args": ""})
                        if call.id:
                            slot["id"] = call.id
                        if call.function is not None:
                            if call.function.name:
                                slot["name"] += call.function.name
                            if call.function.arguments:
                                slot["args"] += call.function.arguments
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except openai.APIError as exc:
            raise ModelError(describe_error(exc)) from exc
        tool_calls = [
            ToolCall(id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["args"])
            for index, slot in sorted(calls.items())
        ]
        return ModelTurn(
            message=AssistantMsg(text="".join(text), tool_calls=tool_calls),
            usage=usage,
            finish_reason=finish,
            refusal="".join(refusal) or None,
        )

    async def close(self) -> None:
        await self._client.close()


def describe_error(exc: openai.APIError) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"model server answered HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APITimeoutError):
        return "model request timed out (after retries)"
    if isinstance(exc, openai.APIConnectionError):
        return f"could not reach the model server: {exc.message}"
    return f"model error: {exc.message}"
