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
from pathlib import Path

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


def load_repo_config(root: Path) -> RepoConfig:
    path = root / CONFIG_PATH
    if not path.is_file():
        return RepoConfig()
    return parse_repo_config(path.read_text(encoding="utf-8"))
