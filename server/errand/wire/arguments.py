"""Command arguments: ``arguments: [oneObject]`` converted to its protocol struct,
or refused with a message that names the field and says what is wrong. Pure.

Constraints are the ones declared on the structs in :mod:`errand.wire.protocol`; this
module only words msgspec's errors for a person, and refuses strings holding a lone
surrogate (``"\\ud800"`` in the JSON text), which is not Unicode and can't be stored,
written to a file or sent on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from errand.wire.words import clip, format_path

P = TypeVar("P", bound=msgspec.Struct)

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONSTRAINT = re.compile(
    r"^Expected `(?:int|str)` (?:[<>]=? \S+|of length [<>]=? \d+|matching regex .*)"
    r" - at `\$\.(\w+)(?:\[(\d+)\])?`$",
    re.DOTALL,
)
_LONG_QUOTE = re.compile(r"'([^']{60})[^']{10,}'")


class InvalidArguments(ValueError):
    """The message is for the client: it names the command and the problem."""


def parse_params(args: Sequence[Any], kind: type[P], command: str) -> P:
    if len(args) > 1:
        raise InvalidArguments(f"{command}: pass one argument object, not {len(args)} arguments")
    raw = args[0] if args else {}
    if raw is None:
        raw = {}
    surrogate = find_lone_surrogate(raw)
    if surrogate is not None:
        raise InvalidArguments(f"{command}: invalid arguments: {surrogate}")
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise InvalidArguments(
            f"{command}: invalid arguments: {explain(str(exc), raw, kind)}"
        ) from None


def find_lone_surrogate(value: Any) -> str | None:
    """Where the first lone surrogate is, said for a person; None when there is none.
    Iterative, so any nesting is safe."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            found = _SURROGATE.search(item)
            if found:
                where = format_path(path) if path else "the argument"
                return (
                    f"{where} contains a lone surrogate (\\u{ord(found.group()):04x}), "
                    "which is not valid Unicode"
                )
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _SURROGATE.search(key):
                    return (
                        f"a field name in {format_path(path) if path else 'the argument'} "
                        "contains a lone surrogate, which is not valid Unicode"
                    )
                stack.append((child, [*path, key]))
        elif isinstance(item, list | tuple):
            stack.extend((child, [*path, i]) for i, child in enumerate(item))
    return None


def explain(message: str, raw: Any, kind: type[msgspec.Struct]) -> str:
    """msgspec's ``message`` about ``raw``, reworded when it is about a declared
    constraint of a top-level field (or of an item of a top-level list)."""
    generic = _LONG_QUOTE.sub(r"'\1…'", message)
    match = _CONSTRAINT.match(message)
    if not match or not isinstance(raw, dict):
        return generic
    name, index = match.group(1), match.group(2)
    constraint = _field_constraint(kind, name)
    value = raw.get(name)
    if index is not None and constraint is not None:
        rule = constraint[0]
        items = rule.item_type if isinstance(rule, mi.ListType) else None
        constraint = None if items is None else _unwrap(items)
        name = f"{name}[{index}]"
        value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
    if constraint is None:
        return generic
    rule, extra = constraint
    if isinstance(rule, mi.IntType) and isinstance(value, int):
        low, high = rule.ge, rule.le
        if low is not None and high is not None:
            return f"{name} must be between {low} and {high}, not {value}"
        bound = f"at least {low}" if low is not None else f"at most {high}"
        return f"{name} must be {bound}, not {value}"
    if isinstance(rule, mi.StrType) and isinstance(value, str):
        if rule.max_length is not None and len(value) > rule.max_length:
            return f"{name} is {len(value)} characters long; at most {rule.max_length} are accepted"
        if rule.min_length is not None and len(value) < rule.min_length:
            return f"{name} is empty" if not value else f"{name} is too short"
        if "invalid" in extra:
            return f"{name} {extra['invalid']} (got {clip(repr(value), 80)})"
    return generic


def _field_constraint(
    kind: type[msgspec.Struct], encoded: str
) -> tuple[mi.Type, dict[str, Any]] | None:
    info = mi.type_info(kind)
    if not isinstance(info, mi.StructType):
        return None
    for field in info.fields:
        if field.encode_name == encoded:
            return _unwrap(field.type)
    return None


def _unwrap(kind: mi.Type) -> tuple[mi.Type, dict[str, Any]] | None:
    extra: dict[str, Any] = {}
    if isinstance(kind, mi.UnionType):
        real = [t for t in kind.types if not isinstance(t, mi.NoneType)]
        if len(real) != 1:
            return None
        kind = real[0]
    if isinstance(kind, mi.Metadata):
        extra = dict(kind.extra or {})
        kind = kind.type
    return kind, extra
