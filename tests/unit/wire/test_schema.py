"""The checked-in JSON Schema is what the structs generate; the wire is camelCase."""

from __future__ import annotations

import inspect
import json

import msgspec

from errand.wire import protocol
from errand.wire.schema import SCHEMA_PATH, render_schema


def test_checked_in_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        "server/errand/wire/schema/protocol.schema.json is stale: run `errand schema --write`"
    )


def test_descriptions_are_the_cleaned_docstrings() -> None:
    """The schema's descriptions come from the protocol's docstrings through
    inspect.cleandoc, not from msgspec's rendering (which changed between versions):
    no indentation carried over, none for types without a docstring of their own."""
    defs = json.loads(render_schema())["$defs"]
    described = 0
    for name, body in defs.items():
        kind = getattr(protocol, name)
        doc = vars(kind).get("__doc__")
        if doc:
            described += 1
            assert body["description"] == inspect.cleandoc(doc)
            assert list(body)[:2] == ["title", "description"]
        else:
            assert "description" not in body, name
    assert described >= 2
    assert "\n    " not in defs["InitOptions"]["description"]


def test_every_command_and_notification_is_in_the_schema() -> None:
    schema = json.loads(render_schema())
    assert set(schema["commands"]) == set(protocol.COMMANDS)
    assert set(schema["notifications"]) == {
        protocol.NOTIFY_TASK_CHANGED,
        protocol.NOTIFY_TASK_LOG,
    }
    for ref in [*schema["notifications"].values()] + [
        r for c in schema["commands"].values() for r in c.values()
    ]:
        assert ref.removeprefix("#/$defs/") in schema["$defs"]


def test_wire_names_are_camel_case() -> None:
    summary = protocol.TaskSummary(
        task_id="t",
        title="x",
        mode="code",
        status="queued",
        created_at="a",
        updated_at="b",
        attempt_count=1,
    )
    wire = protocol.to_wire(summary)
    for key in ("taskId", "createdAt", "updatedAt", "attemptCount", "diffStat"):
        assert key in wire
    log = protocol.to_wire(
        protocol.TaskLog(
            task_id="t", attempt=1, kind="commandFinished", exit_code=0, chunk_id="c1-1"
        )
    )
    assert log["exitCode"] == 0 and log["chunkId"] == "c1-1"


def test_fixed_shapes_keep_their_fields() -> None:
    def fields(kind: type[msgspec.Struct]) -> set[str]:
        return {f.encode_name for f in msgspec.structs.fields(kind)}

    assert {
        "taskId",
        "title",
        "mode",
        "status",
        "createdAt",
        "updatedAt",
        "attemptCount",
        "diffStat",
    } <= fields(protocol.TaskSummary)
    assert {"prompt", "reason", "attempts"} <= fields(protocol.Task)
    assert {
        "attempt",
        "status",
        "report",
        "diffStat",
        "checks",
        "citations",
        "warnings",
        "usage",
    } <= fields(protocol.Attempt)
    assert {"command", "exitCode", "passed", "durationMs", "chunkId"} <= fields(protocol.Check)
    assert {"text", "kind", "resolved", "path", "chunkId", "startLine", "endLine"} <= fields(
        protocol.Citation
    )
    assert {"inputTokens", "outputTokens", "cachedTokens"} <= fields(protocol.Usage)
