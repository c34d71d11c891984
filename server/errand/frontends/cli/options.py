"""The CLI's settings: the flags come from the settings table, and the engine's model."""

from __future__ import annotations

import argparse
import sys

from errand.config.settings import BY_NAME, Settings
from errand.models import Model, create_model

MODEL_FLAGS = ("model", "api", "sandbox", "max_steps", "max_parallel", "max_wall_seconds")
"""The settings a command that runs tasks takes on its command line."""


def model_factory(settings: Settings) -> Model:
    return create_model(
        settings.api, settings.model, base_url=settings.base_url, api_key=settings.api_key
    )


def add_settings(parser: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    """Flags for the settings ``names``, as :data:`errand.config.settings.FIELDS` says."""
    for name in names:
        spec = BY_NAME[name]
        if spec.flag is None:
            continue
        where = f" ({spec.env})" if spec.env else ""
        parser.add_argument(
            spec.flag, dest=name, choices=spec.choices or None, help=f"{spec.help}{where}"
        )


def add_common(parser: argparse.ArgumentParser) -> None:
    add_settings(parser, ("data_dir",))
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")


def load_settings(args: argparse.Namespace) -> Settings:
    """Defaults, then the environment, then the command line."""
    settings, problems = Settings.from_env()
    flags = {name: getattr(args, name) for name in BY_NAME if getattr(args, name, None) is not None}
    settings, more = settings.with_values(flags, source="command line")
    for problem in problems + more:
        print(f"errand: {problem}", file=sys.stderr)
    return settings


def setup_logging(settings: Settings, args: argparse.Namespace) -> None:
    from errand.frontends.logfile import setup

    setup(settings.data_dir, verbose=getattr(args, "verbose", False))
