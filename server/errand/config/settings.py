"""Settings: defaults, then the environment, then the client's initialization options.

Bad values never stop the server: they are reported and the previous value is kept.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from errand.wire.protocol import InitOptions, Usage

APIS = ("responses", "chat")
SANDBOXES = ("bwrap", "docker", "none")


def default_data_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "errand"


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens; cost is shown only when input and output are set."""

    input: float | None = None
    cached_input: float | None = None
    output: float | None = None

    def usage(self, input_tokens: int, output_tokens: int, cached_tokens: int) -> Usage:
        cost = None
        if self.input is not None and self.output is not None:
            cached_rate = self.cached_input if self.cached_input is not None else self.input
            cost = (
                (input_tokens - cached_tokens) * self.input
                + cached_tokens * cached_rate
                + output_tokens * self.output
            ) / 1_000_000
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached_tokens,
            cost_usd=cost,
        )


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    model: str = "gpt-5-codex"
    api: str = "chat"
    sandbox: str = "bwrap"
    max_parallel: int = 4
    max_steps: int = 50
    max_wall_seconds: int = 1800
    max_tokens: int = 2_000_000
    context_tokens: int = 200_000
    command_timeout_seconds: int = 300
    max_disk_bytes: int = 2 << 30
    """What one attempt may write into its copy (setup included) before it is ended."""
    prices: Prices = field(default_factory=Prices)
    max_frame_bytes: int = 64 << 20
    """Largest LSP message ``errand serve`` reads; larger ones are refused."""
    base_url: str | None = None
    api_key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
        env = os.environ if env is None else env
        raw: dict[str, Any] = {}
        if env.get("ERRAND_DATA_DIR"):
            raw["data_dir"] = env["ERRAND_DATA_DIR"]
        for key, name in (
            ("model", "ERRAND_MODEL"),
            ("api", "ERRAND_API"),
            ("sandbox", "ERRAND_SANDBOX"),
            ("max_parallel", "ERRAND_MAX_PARALLEL"),
            ("max_steps", "ERRAND_MAX_STEPS"),
            ("max_wall_seconds", "ERRAND_MAX_WALL_SECONDS"),
            ("max_tokens", "ERRAND_MAX_TOKENS"),
            ("context_tokens", "ERRAND_CONTEXT_TOKENS"),
            ("command_timeout_seconds", "ERRAND_COMMAND_TIMEOUT_SECONDS"),
            ("max_frame_bytes", "ERRAND_MAX_FRAME_BYTES"),
            ("max_disk_bytes", "ERRAND_MAX_DISK_BYTES"),
        ):
            if env.get(name):
                raw[key] = env[name]
        prices = {
            key: env[name]
            for key, name in (
                ("input", "ERRAND_PRICE_INPUT"),
                ("cached_input", "ERRAND_PRICE_CACHED_INPUT"),
                ("output", "ERRAND_PRICE_OUTPUT"),
            )
            if env.get(name)
        }
        if prices:
            raw["prices"] = prices
        return cls().with_values(raw, source="environment")

    def with_init_options(self, options: object) -> tuple[Settings, list[str]]:
        if options is None:
            return self, []
        try:
            parsed = msgspec.convert(options, InitOptions, strict=False)
        except msgspec.ValidationError as exc:
            return self, [f"initializationOptions ignored: {exc}"]
        values = {
            "model": parsed.model,
            "api": parsed.api,
            "sandbox": parsed.sandbox,
            "max_parallel": parsed.max_parallel,
            "max_steps": parsed.max_steps,
            "max_wall_seconds": parsed.max_wall_seconds,
            "max_tokens": parsed.max_tokens,
            "context_tokens": parsed.context_tokens,
            "command_timeout_seconds": parsed.command_timeout_seconds,
            "max_disk_bytes": parsed.max_disk_bytes,
            "data_dir": parsed.data_dir,
            "prices": msgspec.to_builtins(parsed.prices) if parsed.prices else None,
        }
        return self.with_values(
            {k: v for k, v in values.items() if v is not None}, source="initializationOptions"
        )

    def with_values(self, raw: Mapping[str, Any], *, source: str) -> tuple[Settings, list[str]]:
        """Apply ``raw`` field by field; return the new settings and one problem
        message per value that was rejected."""
        problems: list[str] = []
        changes: dict[str, Any] = {}
        for key, value in raw.items():
            try:
                changes[key] = _validate(key, value)
            except ValueError as exc:
                problems.append(f"{source}: {exc}; keeping {getattr(self, key)!r}")
        return dataclasses.replace(self, **changes), problems


_POSITIVE_INTS = {
    "max_parallel": (1, 64),
    "max_steps": (1, 10_000),
    "max_wall_seconds": (1, 7 * 24 * 3600),
    "max_tokens": (1, 1 << 40),
    "context_tokens": (1000, 1 << 30),
    "command_timeout_seconds": (1, 24 * 3600),
    "max_frame_bytes": (1024, 1 << 31),
    "max_disk_bytes": (1 << 20, 1 << 50),
}


def _validate(key: str, value: Any) -> Any:
    if key == "data_dir":
        return Path(str(value)).expanduser()
    if key == "api":
        if value not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}, not {value!r}")
        return value
    if key == "sandbox":
        if value not in SANDBOXES:
            raise ValueError(f"sandbox must be one of {', '.join(SANDBOXES)}, not {value!r}")
        return value
    if key in _POSITIVE_INTS:
        low, high = _POSITIVE_INTS[key]
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a whole number, not {value!r}") from None
        if not low <= number <= high:
            raise ValueError(f"{key} must be between {low} and {high}, not {number}")
        return number
    if key == "prices":
        try:
            values = {k: None if v is None else float(v) for k, v in dict(value).items()}
            prices = Prices(**{_snake(k): v for k, v in values.items()})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"prices must be numbers (USD per million tokens): {exc}") from None
        if any(v is not None and v < 0 for v in (prices.input, prices.cached_input, prices.output)):
            raise ValueError("prices can't be negative")
        return prices
    if key == "model":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key} must be a non-empty string")
        return value.strip()
    raise ValueError(f"unknown setting {key!r}")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
