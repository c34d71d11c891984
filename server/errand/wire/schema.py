"""JSON Schema for errand's wire types, generated from :mod:`errand.wire.protocol`.

The checked-in copy lives at ``server/errand/wire/schema/protocol.schema.json``; a test
fails when it is stale. Regenerate with ``errand schema --write``.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import msgspec

from errand.wire import protocol

SCHEMA_PATH = Path(__file__).parent / "schema" / "protocol.schema.json"


def build_schema() -> dict[str, Any]:
    types: list[Any] = [
        *dict.fromkeys(protocol.COMMAND_PARAMS.values()),
        *dict.fromkeys(protocol.COMMAND_RESULTS.values()),
        *protocol.NOTIFICATION_PARAMS.values(),
        protocol.Task,
        protocol.InitOptions,
    ]
    unique = list(dict.fromkeys(types))
    _, components = msgspec.json.schema_components(unique, ref_template="#/$defs/{name}")
    components = {name: _describe(name, body) for name, body in components.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "errand wire protocol",
        "commands": {
            name: {
                "params": f"#/$defs/{protocol.COMMAND_PARAMS[name].__name__}",
                "result": f"#/$defs/{protocol.COMMAND_RESULTS[name].__name__}",
            }
            for name in protocol.COMMANDS
        },
        "notifications": {
            name: f"#/$defs/{t.__name__}" for name, t in protocol.NOTIFICATION_PARAMS.items()
        },
        "$defs": dict(sorted(components.items())),
    }


def _describe(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its description taken from the docstring of the protocol type of
    that name, cleaned with :func:`inspect.cleandoc`, or with none when it has no
    docstring of its own. msgspec's own rendering of docstrings differs between its
    versions; this keeps the checked-in schema (and the client types generated from
    it) the same whichever msgspec is installed."""
    kind = getattr(protocol, name, None)
    doc = vars(kind).get("__doc__") if isinstance(kind, type) else None
    out = {key: value for key, value in body.items() if key != "description"}
    if not isinstance(doc, str) or not doc.strip():
        return out
    described: dict[str, Any] = {}
    for key, value in out.items():
        described[key] = value
        if key == "title":
            described["description"] = inspect.cleandoc(doc)
    if "description" not in described:
        described = {"description": inspect.cleandoc(doc), **out}
    return described


def render_schema() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_schema(), encoding="utf-8")
    return path
