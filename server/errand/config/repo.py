"""Per-repository configuration: ``.errand/config.toml`` at the repository root.

Example::

    [setup]
    script = "pip install -e '.[test]'"   # runs in the task copy before the agent
    network = true                        # the setup phase may use the network
    secrets = ["PIP_INDEX_URL"]           # host variables passed to setup only
    timeout_seconds = 900

    [checks]
    commands = ["./scripts/check.sh"]     # also counted as checks

The agent phase always runs without network and without the named secrets.
"""

from __future__ import annotations

import tomllib

import msgspec

CONFIG_PATH = ".errand/config.toml"


class SetupConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    script: str | None = None
    network: bool = False
    secrets: list[str] = []
    timeout_seconds: int = 900


class ChecksConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    commands: list[str] = []


class RepoConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    setup: SetupConfig = msgspec.field(default_factory=SetupConfig)
    checks: ChecksConfig = msgspec.field(default_factory=ChecksConfig)


class RepoConfigError(ValueError):
    """The file exists but is not valid; the message names the file and the problem."""


def parse_repo_config(text: str, *, where: str = CONFIG_PATH) -> RepoConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RepoConfigError(f"{where}: not valid TOML: {exc}") from None
    try:
        return msgspec.convert(data, RepoConfig)
    except msgspec.ValidationError as exc:
        raise RepoConfigError(f"{where}: {exc}") from None


def repo_config(data: bytes | None) -> RepoConfig:
    """The configuration in ``data`` (the file's bytes), or the defaults without a file."""
    if data is None:
        return RepoConfig()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RepoConfigError(f"{CONFIG_PATH}: not UTF-8 ({exc})") from None
    return parse_repo_config(text)
