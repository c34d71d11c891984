"""The Chat Completions wire format of a planned turn: one body, or stream chunks."""

from __future__ import annotations

from collections.abc import Iterator

from support.replay.director import Counts, Plan, arg_pieces, call_id, text_pieces
from support.replay.scenario import JSONObj, Turn


def _chat_usage(counts: Counts) -> JSONObj:
    return {
        "prompt_tokens": counts.prompt,
        "completion_tokens": counts.completion,
        "total_tokens": counts.prompt + counts.completion,
        "prompt_tokens_details": {"cached_tokens": counts.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": counts.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(turn: Turn) -> str:
    return "tool_calls" if turn.tool_calls else "stop"


def chat_completion(
    plan: Plan, *, model: str, counts: Counts, completion_id: str, created: int
) -> JSONObj:
    """The non-streamed Chat Completions body for a planned turn."""
    turn = plan.turn
    message: JSONObj = {
        "role": "assistant",
        "content": turn.content if turn.content is not None or turn.tool_calls else "",
        "refusal": turn.refusal,
        "annotations": [],
    }
    if turn.refusal is not None and turn.content is None:
        message["content"] = None
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id(plan, i),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for i, call in enumerate(turn.tool_calls)
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_errand_replay",
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(turn),
            }
        ],
        "usage": _chat_usage(counts),
    }


def chat_chunks(
    plan: Plan,
    *,
    model: str,
    counts: Counts,
    completion_id: str,
    created: int,
    include_usage: bool,
) -> Iterator[JSONObj]:
    """The streamed Chat Completions chunks for a planned turn (without ``[DONE]``)."""
    turn = plan.turn

    def chunk(delta: JSONObj, finish: str | None = None) -> JSONObj:
        body: JSONObj = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_errand_replay",
            "service_tier": "default",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = None
        return body

    has_text = turn.content is not None or (not turn.tool_calls and turn.refusal is None)
    yield chunk({"role": "assistant", "content": "" if has_text else None, "refusal": None})
    for piece in text_pieces(turn.content or ""):
        yield chunk({"content": piece})
    for piece in text_pieces(turn.refusal or ""):
        yield chunk({"refusal": piece})
    for i, call in enumerate(turn.tool_calls):
        head = {"name": call.name, "arguments": ""}
        yield chunk(
            {
                "tool_calls": [
                    {"index": i, "id": call_id(plan, i), "type": "function", "function": head}
                ]
            }
        )
        for piece in arg_pieces(call.arguments):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, _finish_reason(turn))
    if include_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = _chat_usage(counts)
        yield final
