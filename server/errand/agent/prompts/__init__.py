"""The instructions errand gives the model."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    return (resources.files("errand.agent") / "prompts" / f"{name}.md").read_text("utf-8")


def system_prompt(mode: str) -> str:
    return load("ask" if mode == "ask" else "system")
