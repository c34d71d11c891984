"""The Responses API through the official ``openai`` package, streamed, stateless.

Every request carries the whole conversation (``store=False``): errand never relies
on the service keeping responses. Reasoning still carries between steps: each
request asks for ``reasoning.encrypted_content``, the reasoning items the model
returns are kept in :attr:`AssistantMsg.opaque`, and they are sent back verbatim,
ahead of that turn's message and function calls, on every later request.

Conversation items map to input items as follows:

* the leading :class:`SystemMsg` items become ``instructions``; a later one becomes a
  ``developer`` message in place;
* :class:`UserMsg` -> a ``user`` message;
* :class:`AssistantMsg` -> its opaque (reasoning) items, then an ``assistant``
  message (when it has text), then one ``function_call`` per
  tool call (``call_id`` = :attr:`ToolCall.id`). A turn with none of these (an
  empty answer or a refusal) is sent as an empty assistant message so that the
  conversation keeps its shape;
* :class:`ToolResult` -> ``function_call_output``.

A reasoning item without ``encrypted_content`` is not kept: with ``store=False`` the
service could not resolve it by id and would reject the next request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
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
from errand.models.openai_chat import describe_error

log = logging.getLogger(__name__)

ENCRYPTED_REASONING = "reasoning.encrypted_content"


def to_input(items: list[Item]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split a conversation into ``instructions`` and Responses ``input`` items."""
    instructions: list[str] = []
    result: list[dict[str, Any]] = []
    leading = True
    for item in items:
        if isinstance(item, SystemMsg):
            if leading:
                instructions.append(item.text)
            else:
                result.append({"type": "message", "role": "developer", "content": item.text})
            continue
        leading = False
        if isinstance(item, UserMsg):
            result.append({"type": "message", "role": "user", "content": item.text})
        elif isinstance(item, AssistantMsg):
            result.extend(dict(opaque) for opaque in item.opaque)
            if item.text or not (item.tool_calls or item.opaque):
                result.append({"type": "message", "role": "assistant", "content": item.text})
            result.extend(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                }
                for call in item.tool_calls
            )
        elif isinstance(item, ToolResult):
            result.append(
                {"type": "function_call_output", "call_id": item.call_id, "output": item.output}
            )
    return ("\n\n".join(instructions) if instructions else None), result


def to_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            # Strict mode would require every property to be listed as required.
            "strict": False,
        }
        for tool in tools
    ]


@dataclass
class _Call:
    call_id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Turn:
    """What one streamed response has produced so far."""

    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    reasoning: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage: TurnUsage = field(default_factory=TurnUsage)
    finished: str | None = None
    """``completed``, or the reason given for an incomplete response."""


def _field(obj: object, name: str) -> Any:
    return getattr(obj, name, None)


def _to_dict(obj: Any) -> dict[str, Any]:
    """An SDK model as the JSON the server sent (unset fields left out)."""
    return dict(obj.to_dict(mode="json"))


def _usage(usage: Any) -> TurnUsage:
    if usage is None:
        return TurnUsage()
    details = _field(usage, "input_tokens_details")
    cached = _field(details, "cached_tokens") if details is not None else None
    return TurnUsage(
        input_tokens=int(_field(usage, "input_tokens") or 0),
        output_tokens=int(_field(usage, "output_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


def _take_item(turn: _Turn, index: int, item: Any) -> None:
    kind = _field(item, "type")
    if kind == "function_call":
        call = turn.calls.setdefault(index, _Call())
        call.call_id = _field(item, "call_id") or call.call_id
        call.name = _field(item, "name") or call.name
        arguments = _field(item, "arguments")
        if arguments:
            call.arguments = arguments
    elif kind == "reasoning":
        if _field(item, "encrypted_content"):
            turn.reasoning[index] = _to_dict(item)
        else:
            log.debug("dropping a reasoning item without encrypted content")


def _absorb(turn: _Turn, event: Any, on_text: TextSink | None) -> None:
    """Fold one stream event into ``turn``."""
    kind = _field(event, "type")
    if kind == "response.output_text.delta":
        delta = str(event.delta)
        if delta:
            turn.text.append(delta)
            if on_text is not None:
                on_text(delta)
    elif kind == "response.refusal.delta":
        turn.refusal.append(str(event.delta))
    elif kind == "response.output_item.added":
        _take_item(turn, int(event.output_index), event.item)
    elif kind == "response.function_call_arguments.delta":
        call = turn.calls.setdefault(int(event.output_index), _Call())
        call.arguments += str(event.delta)
    elif kind == "response.function_call_arguments.done":
        turn.calls.setdefault(int(event.output_index), _Call()).arguments = str(event.arguments)
    elif kind == "response.output_item.done":
        _take_item(turn, int(event.output_index), event.item)
    elif kind == "response.completed":
        turn.usage = _usage(_field(event.response, "usage"))
        turn.finished = "completed"
    elif kind == "response.incomplete":
        turn.usage = _usage(_field(event.response, "usage"))
        details = _field(event.response, "incomplete_details")
        turn.finished = str(_field(details, "reason") or "incomplete")
    elif kind == "response.failed":
        error = _field(event.response, "error")
        message = _field(error, "message") or "no reason given"
        code = _field(error, "code")
        raise ModelError(f"the model failed: {message}" + (f" ({code})" if code else ""))
    elif kind == "error":
        code = _field(event, "code")
        raise ModelError(
            f"model server error: {_field(event, 'message')}" + (f" ({code})" if code else "")
        )


def _finish(turn: _Turn) -> ModelTurn:
    if turn.finished is None:
        raise ModelError("the model's response stream ended before the response was complete")
    tool_calls = [
        ToolCall(id=call.call_id or f"call_{index}", name=call.name, arguments=call.arguments)
        for index, call in sorted(turn.calls.items())
    ]
    if turn.finished != "completed":
        finish = turn.finished
    else:
        finish = "tool_calls" if tool_calls else "stop"
    opaque = [item for _, item in sorted(turn.reasoning.items())]
    return ModelTurn(
        message=AssistantMsg(text="".join(turn.text), tool_calls=tool_calls, opaque=opaque),
        usage=turn.usage,
        finish_reason=finish,
        refusal="".join(turn.refusal) or None,
    )


class ResponsesModel:
    """One model behind the OpenAI Responses API (or a server that speaks it)."""

    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self._client = client
        self.name = model

    def request(self, items: list[Item], tools: list[ToolSpec]) -> dict[str, Any]:
        """The keyword arguments of ``responses.create`` for this conversation."""
        instructions, input_items = to_input(items)
        request: dict[str, Any] = {
            "model": self.name,
            "input": input_items,
            "stream": True,
            "store": False,
            "include": [ENCRYPTED_REASONING],
        }
        if instructions is not None:
            request["instructions"] = instructions
        if tools:
            request["tools"] = to_tools(tools)
        return request

    async def complete(
        self, items: list[Item], tools: list[ToolSpec], on_text: TextSink | None = None
    ) -> ModelTurn:
        turn = _Turn()
        try:
            stream = await self._client.responses.create(**self.request(items, tools))
            try:
                events = stream.__aiter__()
                while True:
                    try:
                        event = await events.__anext__()
                    except StopAsyncIteration:
                        break
                    except openai.APIError:
                        raise
                    except Exception as exc:
                        # The transport errors of the HTTP library under ``openai``.
                        raise ModelError(f"the model's response stream broke off: {exc!r}") from exc
                    _absorb(turn, event, on_text)
            finally:
                await stream.close()
        except openai.APIError as exc:
            raise ModelError(describe_error(exc)) from exc
        return _finish(turn)

    async def close(self) -> None:
        await self._client.close()
