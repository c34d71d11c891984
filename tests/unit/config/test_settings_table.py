"""One vocabulary: the settings table agrees with the wire's InitOptions, the backend and
API names everywhere, and the command line."""

from __future__ import annotations

from typing import get_args

import msgspec

from errand.config.settings import APIS, FIELDS, SANDBOXES, Settings
from errand.frontends.cli.main import build_parser
from errand.frontends.cli.options import load_settings
from errand.sandbox import BACKENDS
from errand.wire.protocol import InitOptions


def test_every_initialization_option_is_in_the_table_and_back() -> None:
    wire = {f.encode_name for f in msgspec.structs.fields(InitOptions)}
    table = {spec.option for spec in FIELDS if spec.option}
    assert wire == table


def test_names_of_backends_and_apis_agree_with_the_wire() -> None:
    fields = {f.name: f.type for f in msgspec.structs.fields(InitOptions)}
    sandbox = next(t for t in get_args(fields["sandbox"]) if t is not type(None))
    api = next(t for t in get_args(fields["api"]) if t is not type(None))
    assert get_args(sandbox) == SANDBOXES == BACKENDS
    assert set(get_args(api)) == set(APIS)


def test_every_field_names_a_setting_and_the_flags_reach_it() -> None:
    assert {spec.name for spec in FIELDS} <= set(Settings.__dataclass_fields__)
    args = build_parser().parse_args(
        ["run", "x", "--model", "m", "--max-wall-seconds", "60", "--sandbox", "none"]
    )
    settings = load_settings(args)
    assert (settings.model, settings.max_wall_seconds, settings.sandbox) == ("m", 60, "none")
