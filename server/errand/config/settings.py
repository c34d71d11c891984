"""Settings: defaults, then the environment, then the client's initialization options
(or the command line), each overriding the one before.

One table, :data:`FIELDS`, says for every setting its environment variable, its
initialization option and its command-line flag, and how a value is checked. Bad
values never stop the server: each is reported and the previous value is kept.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APIS = ("responses", "chat")
SANDBOXES = ("bwrap", "docker", "none")
DAEMON_MODES = ("auto", "off")


def default_data_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "errand"


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens; cost is known only when input and output are set."""

    input: float | None = None
    cached_input: float | None = None
    output: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int) -> float | None:
        if self.input is None or self.output is None:
            return None
        cached_rate = self.cached_input if self.cached_input is not None else self.input
        return (
            (input_tokens - cached_tokens) * self.input
            + cached_tokens * cached_rate
            + output_tokens * self.output
        ) / 1_000_000


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
    daemon: str = "auto"
    """``auto``: front ends use the data folder's daemon, starting one when none runs;
    ``off``: the engine runs inside the front end (tests, special cases)."""
    daemon_idle_seconds: int = 600
    show_all_tasks: bool = False
    """An editor window lists every task, not only those of its workspace folders."""
    base_url: str | None = None
    api_key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
        env = os.environ if env is None else env
        raw: dict[str, Any] = {}
        for spec in FIELDS:
            if spec.name == "prices":
                prices = {key: env[name] for key, name in PRICE_ENV.items() if env.get(name)}
                if prices:
                    raw["prices"] = prices
            elif spec.env and env.get(spec.env):
                raw[spec.name] = env[spec.env]
        return cls().with_values(raw, source="environment")

    def with_init_options(self, options: object) -> tuple[Settings, list[str]]:
        """Apply ``initializationOptions`` (an object keyed by option names)."""
        if options is None:
            return self, []
        if not isinstance(options, Mapping):
            return self, [f"initializationOptions ignored: expected an object, not {options!r}"]
        names = {spec.option: spec.name for spec in FIELDS if spec.option}
        unknown = sorted(str(key) for key in options if key not in names)
        raw = {names[key]: value for key, value in options.items() if key in names}
        raw = {key: value for key, value in raw.items() if value is not None}
        settings, problems = self.with_values(raw, source="initializationOptions")
        if unknown:
            problems.append(f"initializationOptions: unknown option(s) {', '.join(unknown)}")
        return settings, problems

    def with_values(self, raw: Mapping[str, Any], *, source: str) -> tuple[Settings, list[str]]:
        """Apply ``raw`` (values by field name) field by field; return the new settings
        and one problem message per value that was rejected."""
        problems: list[str] = []
        changes: dict[str, Any] = {}
        for key, value in raw.items():
            spec = BY_NAME.get(key)
            try:
                if spec is None:
                    raise ValueError(f"unknown setting {key!r}")
                changes[key] = spec.check(key, value)
            except ValueError as exc:
                problems.append(f"{source}: {exc}; keeping {getattr(self, key, None)!r}")
        return dataclasses.replace(self, **changes), problems


# --- how values are checked ------------------------------------------------------------

Check = Callable[[str, Any], Any]


def _path(key: str, value: Any) -> Path:
    return Path(str(value)).expanduser()


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string")
    return value.strip()


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(key: str, value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
        return str(value)

    return check


def _whole(low: int, high: int) -> Check:
    def check(key: str, value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a whole number, not {value!r}") from None
        if not low <= number <= high:
            raise ValueError(f"{key} must be between {low} and {high}, not {number}")
        return number

    return check


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{key} must be true or false, not {value!r}")


def _prices(key: str, value: Any) -> Prices:
    try:
        values = {_snake(k): None if v is None else float(v) for k, v in dict(value).items()}
        prices = Prices(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"prices must be numbers (USD per million tokens): {exc}") from None
    if any(v is not None and v < 0 for v in (prices.input, prices.cached_input, prices.output)):
        raise ValueError("prices can't be negative")
    return prices


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


# --- the table -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    """The :class:`Settings` attribute."""
    env: str | None
    option: str | None
    """The initialization option (camelCase), as :class:`errand.wire.protocol.InitOptions`
    declares it."""
    flag: str | None
    check: Check
    help: str = ""
    choices: tuple[str, ...] = ()


PRICE_ENV = {
    "input": "ERRAND_PRICE_INPUT",
    "cached_input": "ERRAND_PRICE_CACHED_INPUT",
    "output": "ERRAND_PRICE_OUTPUT",
}

FIELDS: tuple[Field, ...] = (
    Field(
        name="data_dir",
        env="ERRAND_DATA_DIR",
        option="dataDir",
        flag="--data-dir",
        check=_path,
        help="errand's data folder",
    ),
    Field(
        name="model",
        env="ERRAND_MODEL",
        option="model",
        flag="--model",
        check=_text,
        help="model name",
    ),
    Field(
        name="api",
        env="ERRAND_API",
        option="api",
        flag="--api",
        check=_one_of(APIS),
        help="OpenAI API",
        choices=APIS,
    ),
    Field(
        name="sandbox",
        env="ERRAND_SANDBOX",
        option="sandbox",
        flag="--sandbox",
        check=_one_of(SANDBOXES),
        help="sandbox backend",
        choices=SANDBOXES,
    ),
    Field(
        name="max_parallel",
        env="ERRAND_MAX_PARALLEL",
        option="maxParallel",
        flag="--max-parallel",
        check=_whole(1, 64),
        help="attempts running at once",
    ),
    Field(
        name="max_steps",
        env="ERRAND_MAX_STEPS",
        option="maxSteps",
        flag="--max-steps",
        check=_whole(1, 10_000),
        help="model turns per attempt",
    ),
    Field(
        name="max_wall_seconds",
        env="ERRAND_MAX_WALL_SECONDS",
        option="maxWallSeconds",
        flag="--max-wall-seconds",
        check=_whole(1, 7 * 24 * 3600),
        help="wall time per attempt",
    ),
    Field(
        name="max_tokens",
        env="ERRAND_MAX_TOKENS",
        option="maxTokens",
        flag="--max-tokens",
        check=_whole(1, 1 << 40),
        help="input + output tokens per attempt",
    ),
    Field(
        name="context_tokens",
        env="ERRAND_CONTEXT_TOKENS",
        option="contextTokens",
        flag="--context-tokens",
        check=_whole(1000, 1 << 30),
        help="conversation size at which old outputs are trimmed",
    ),
    Field(
        name="command_timeout_seconds",
        env="ERRAND_COMMAND_TIMEOUT_SECONDS",
        option="commandTimeoutSeconds",
        flag="--command-timeout-seconds",
        check=_whole(1, 24 * 3600),
        help="time cap per command",
    ),
    Field(
        name="max_disk_bytes",
        env="ERRAND_MAX_DISK_BYTES",
        option="maxDiskBytes",
        flag="--max-disk-bytes",
        check=_whole(1 << 20, 1 << 50),
        help="bytes an attempt may write into its copy",
    ),
    Field(
        name="prices",
        env=None,
        option="prices",
        flag=None,
        check=_prices,
        help="USD per million tokens (ERRAND_PRICE_*)",
    ),
    Field(
        name="max_frame_bytes",
        env="ERRAND_MAX_FRAME_BYTES",
        option=None,
        flag=None,
        check=_whole(1024, 1 << 31),
        help="largest LSP message errand serve reads",
    ),
    Field(
        name="daemon",
        env="ERRAND_DAEMON",
        option=None,
        flag=None,
        check=_one_of(DAEMON_MODES),
        help="use errand's daemon (auto) or run the engine in the front end (off)",
        choices=DAEMON_MODES,
    ),
    Field(
        name="daemon_idle_seconds",
        env="ERRAND_DAEMON_IDLE_SECONDS",
        option=None,
        flag=None,
        check=_whole(1, 7 * 24 * 3600),
        help="the daemon exits after this long with no attempt and no front end",
    ),
    Field(
        name="show_all_tasks",
        env="ERRAND_SHOW_ALL_TASKS",
        option="showAllTasks",
        flag=None,
        check=_flag,
        help="list every task, not only those of the window's folders",
    ),
)
BY_NAME = {spec.name: spec for spec in FIELDS}


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the environment variables that give them (for a process started
    to hold them, such as the daemon)."""
    env: dict[str, str] = {}
    for spec in FIELDS:
        value = getattr(settings, spec.name)
        if spec.name == "prices":
            for key, name in PRICE_ENV.items():
                if getattr(value, key) is not None:
                    env[name] = str(getattr(value, key))
        elif spec.env and value is not None:
            env[spec.env] = str(value).lower() if isinstance(value, bool) else str(value)
    return env
