"""The Responses API wire format of a planned turn: output items, the response
object, and the event stream."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from support.replay.director import Counts, Plan, arg_pieces, call_id, text_pieces
from support.replay.history import ENCRYPTED_PREFIX
from support.replay.scenario import JSONObj, dumps


def _encrypted_reasoning(plan: Plan) -> str:
    payload = {
        "s": plan.scenario.name,
        "v": plan.variant,
        "t": plan.turn_index,
        "r": plan.turn.reasoning,
    }
    return ENCRYPTED_PREFIX + base64.urlsafe_b64encode(dumps(payload).encode()).decode()


@dataclass(frozen=True)
class ResponsesOptions:
    """What a Responses request asks for that shapes the output."""

    encrypted_reasoning: bool
    reasoning_summary: bool


def responses_options(body: JSONObj) -> ResponsesOptions:
    include = body.get("include") or []
    reasoning = body.get("reasoning")
    summary = reasoning.get("summary") if isinstance(reasoning, dict) else None
    generate = reasoning.get("generate_summary") if isinstance(reasoning, dict) else None
    return ResponsesOptions(
        encrypted_reasoning=isinstance(include, list) and "reasoning.encrypted_content" in include,
        reasoning_summary=bool(summary or generate),
    )


def response_output(plan: Plan, options: ResponsesOptions) -> list[JSONObj]:
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
                "call_id": call_id(plan, i),
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
        )
    return items


def responses_usage(counts: Counts) -> JSONObj:
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
    plan: Plan,
    *,
    response_id: str,
    created: int,
    output: list[JSONObj],
    counts: Counts,
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
                for piece in text_pieces(summary["text"]):
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
                    for piece in text_pieces(part["text"]):
                        yield event("response.output_text.delta", delta=piece, logprobs=[], **at)
                    yield event("response.output_text.done", text=part["text"], logprobs=[], **at)
                else:
                    start = {**part, "refusal": ""}
                    yield event("response.content_part.added", part=start, **at)
                    for piece in text_pieces(part["refusal"]):
                        yield event("response.refusal.delta", delta=piece, **at)
                    yield event("response.refusal.done", refusal=part["refusal"], **at)
                yield event("response.content_part.done", part=part, **at)
        else:
            added = {**item, "arguments": "", "status": "in_progress"}
            yield event("response.output_item.added", output_index=index, item=added)
            for piece in arg_pieces(item["arguments"]):
                yield event("response.function_call_arguments.delta", delta=piece, **where)
            yield event(
                "response.function_call_arguments.done", arguments=item["arguments"], **where
            )
        yield event("response.output_item.done", output_index=index, item=item)
    yield event(
        "response.completed",
        response=snapshot("completed", output, responses_usage(counts)),
    )
