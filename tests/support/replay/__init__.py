"""Scripted, OpenAI-compatible model server: the test suite's only stand-in.

It lives with the tests (bench starts it too); ``errand demo`` uses an in-process
scripted model instead (``errand.models.scripted``). It is not a model. It plays
turns that a scenario file scripts in advance, and it speaks the real HTTP wire
format, so the official ``openai`` package talks to it through ``base_url`` the
way it talks to the real service.

Endpoints
=========

Every path works with or without the ``/v1`` prefix.

``POST /chat/completions``
    Chat Completions, as a single JSON body or, with ``"stream": true``, as
    server-sent events (``data: {chunk}`` lines and a closing
    ``data: [DONE]``). Tool-call arguments and text reach the client in several
    pieces, so the client has to put them back together. The first chunk of a
    tool call carries ``index``, ``id``, ``type`` and ``function.name``; later
    chunks carry only ``index`` and pieces of ``function.arguments``.
    ``finish_reason`` is ``tool_calls`` when the turn calls tools and ``stop``
    when it does not. The JSON body always carries ``usage``. A stream carries
    it only when ``stream_options.include_usage`` is set: every chunk then has
    ``"usage": null``, and a last chunk has ``"choices": []`` and the usage.
``POST /responses``
    The Responses API, as a single JSON body or as the real event stream:
    ``response.created``, ``response.in_progress``, and then for each output
    item ``response.output_item.added`` → the item's own events →
    ``response.output_item.done``, and finally ``response.completed``. The
    completed event holds the whole response with ``usage``. The item events
    are:

    * a message: ``response.content_part.added``, then
      ``response.output_text.delta`` (or ``response.refusal.delta``) several
      times, then ``response.output_text.done`` (or
      ``response.refusal.done``), then ``response.content_part.done``;
    * a function call: ``response.function_call_arguments.delta`` several times,
      then ``response.function_call_arguments.done``;
    * a reasoning item: ``response.reasoning_summary_part.added`` →
      ``response.reasoning_summary_text.delta`` several times →
      ``response.reasoning_summary_text.done`` →
      ``response.reasoning_summary_part.done``, but only when the request asks
      for a summary (``reasoning.summary`` set), as the real service does.

    The output items come in this order: reasoning (``rs_…``), then the
    message (``msg_…``, holding the content and/or refusal), then the function
    calls (``fc_…`` ids, ``call_…`` call_ids). A reasoning item carries
    ``encrypted_content`` only when ``include`` holds
    ``"reasoning.encrypted_content"``. It is an opaque token that starts with
    ``rpl1.``. ``previous_response_id`` works for responses that this server
    produced since its last reset.
``GET /models``, ``GET /models/{id}``
    The names of the scenarios, as model objects.
``GET /_requests``
    For tests: a JSON list holding the body of every request that reached
    ``/chat/completions`` and ``/responses``, in order of arrival. Requests
    that failed on purpose are included.
``POST /_reset``
    Forgets the request log, the round-robin counters, the injected-error
    counters and the stored responses.

Errors are sent the way the real service sends them:
``{"error": {"message", "type", "param", "code"}}`` with the HTTP status.

Scenario files
==============

A scenario is one JSON object. A file holds one scenario or a list of them.
A folder is read as every ``*.json`` file in it, sorted by name. Unknown keys
are rejected, so a misspelt key fails at load time and does not silently
change the script::

    {
      "name": "fix-test",                  // required, unique; also a model id
      "description": "free text",          // optional, ignored
      "match": "failing test",             // optional, see "Choosing a scenario"
      "turns": [turn, ...]                 // a script with one variant, or
      "variants": [[turn, ...], [turn, ...]]   // several alternative scripts
    }

Give exactly one of ``turns`` and ``variants``. Each variant needs at least one
turn. A turn is the model's whole reply to one request::

    {
      "content": "text",                   // assistant text (the report, when
                                           // the turn has no tool calls)
      "tool_calls": [{"name": "shell", "arguments": {"command": "ls"}}],
                                           // arguments: an object (sent as
                                           // compact JSON) or a string, sent
                                           // verbatim, for scripting malformed
                                           // arguments; absent: "{}"
      "reasoning": "text",                 // reasoning summary (Responses API);
                                           // counted as reasoning tokens in both
      "refusal": "text",                   // a refusal instead of / beside content
      "delay_ms": 0,                       // wait before the reply (before the
                                           // first chunk, when streamed)
      "chunk_delay_ms": 0,                 // wait between streamed chunks
      "error": {"status": 429, "times": 2, "message": "...", "type": "...",
                "code": "...", "retry_after_ms": 10},
                                           // fail this turn `times` times (default 1)
                                           // with that status before serving it;
                                           // retry_after_ms sets the retry-after-ms
                                           // header (absent: no header, and the
                                           // client falls back on its own backoff)
      "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                "cached_tokens": 4, "reasoning_tokens": 2}
                                           // overrides for the computed counts;
                                           // input_tokens / output_tokens are
                                           // accepted as aliases
    }

A turn with no ``content``, ``tool_calls`` or ``refusal`` answers with empty
text and ``finish_reason`` ``stop``.

Choosing a scenario, a turn and a variant
=========================================

* **Scenario.** The one whose ``name`` equals the request's ``model``. If none
  does, the first one (in load order) whose ``match`` is a substring of the
  first user message (Chat Completions) or of the first user input (Responses;
  a plain-string ``input`` counts as that message). If none matches, the first
  scenario.
* **Turn.** The number of assistant turns already in the request's history.
  An assistant turn is a maximal run of consecutive assistant items: for Chat
  Completions, ``assistant`` messages; for Responses, assistant ``message``,
  ``function_call`` and ``reasoning`` items (and the other model-produced call
  types) in ``input``, after the items of ``previous_response_id``, if any.
  ``item_reference`` items neither start nor end a run. So the server keeps no
  state for a conversation: parallel conversations and follow-up questions
  work, and so does any replay of a history.
* **Variant.** A request at turn 0 takes the scenario's variants in turn,
  round-robin (0, 1, 2, 0, …). A request that fails on purpose does not use up
  its variant. Later turns find the variant again from the history. The
  generated ids encode it: ``call_v{variant}_t{turn}_{i}`` (tool calls; a
  Responses call has ``fc_v…`` ids and ``call_v…`` call_ids),
  ``msg_v{variant}_t{turn}``, ``rs_v{variant}_t{turn}``, and the reasoning
  ``encrypted_content``. A history that holds none of these ids (for example a
  Chat Completions conversation whose earlier turns called no tools) is
  matched on its assistant text against the variants' scripted ``content``.
  If that fails too, the variant is 0.
* **Running out.** A request past the last turn of its variant gets HTTP 400
  with error code ``replay_script_exhausted`` and a message that names the
  scenario, the variant and the turn, so a test fails clearly.
* **Injected errors** are counted per (scenario, variant, turn): the first
  ``times`` requests that reach that turn fail, whatever conversation they
  belong to. Later requests are served.

Usage numbers
=============

The numbers are deterministic and need no tokenizer.

* ``prompt_tokens`` / ``input_tokens``: the size of the request body in bytes,
  plus the size of the stored items of ``previous_response_id`` as JSON,
  divided by 4.
* ``cached_tokens``: the JSON size of the history up to the end of the last
  assistant turn, divided by 4. It is 0 at turn 0, and it is a stand-in for
  prompt caching.
* ``reasoning_tokens``: ``len(reasoning) // 4``.
* ``completion_tokens`` / ``output_tokens``: the characters of content, refusal,
  tool names and arguments, divided by 4 (at least 1), plus the reasoning
  tokens.

A turn's ``usage`` object overrides any of these numbers.

Chat Completions has no field for reasoning text, so there ``reasoning`` only
shows in ``completion_tokens_details.reasoning_tokens``.

Running it by hand, from the repository's root::

    PYTHONPATH=tests .venv/bin/python -m support.replay scenarios/ extra.json --port 8765

The package: ``scenario`` (the file format), ``history`` (what a request's
conversation says), ``director`` (choosing the turn; state and counters),
``chat`` and ``responses`` (the two wire formats), ``server`` (HTTP and
:class:`ReplayServer`), ``__main__`` (the command line).
"""

from __future__ import annotations

from support.replay.scenario import (
    InjectedError,
    Scenario,
    ScenarioError,
    ToolCall,
    Turn,
    UsageOverride,
    load_scenarios,
    parse_scenario,
)
from support.replay.server import ReplayServer

__all__ = [
    "InjectedError",
    "ReplayServer",
    "Scenario",
    "ScenarioError",
    "ToolCall",
    "Turn",
    "UsageOverride",
    "load_scenarios",
    "parse_scenario",
]
