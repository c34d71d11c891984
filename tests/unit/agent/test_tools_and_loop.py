"""Pure agent pieces: context trimming, repository config, prices."""

from __future__ import annotations

import pytest

from errand.agent.context import size_of, trim_tool_outputs
from errand.config.repo import RepoConfigError, parse_repo_config
from errand.config.settings import Prices, Settings
from errand.models.base import AssistantMsg, Item, SystemMsg, ToolCall, ToolResult, UserMsg


def _conversation(outputs: int, size: int) -> list[Item]:
    items: list[Item] = [SystemMsg("sys"), UserMsg("task")]
    for i in range(outputs):
        items.append(AssistantMsg(tool_calls=[ToolCall(f"call{i}", "shell", "{}")]))
        header = f"chunk_id: c1-{i + 1}\nexit_code: 0\nduration_ms: 5"
        body = f"{header}\noutput:\n" + "x" * size
        items.append(ToolResult(call_id=f"call{i}", name="shell", output=body, header=header))
    return items


def test_trimming_cuts_oldest_outputs_and_keeps_their_chunk_ids() -> None:
    items = _conversation(6, 10_000)
    before = size_of(items)
    trimmed = trim_tool_outputs(items, budget_chars=35_000, keep_recent=3)
    assert trimmed == 3
    assert size_of(items) < 35_000 < before
    results = [i for i in items if isinstance(i, ToolResult)]
    for old in results[:3]:
        assert old.output.startswith(f"chunk_id: c1-{results.index(old) + 1}\nexit_code: 0")
        assert "trimmed to save context: " in old.output
    for recent in results[3:]:
        assert recent.output.endswith("x" * 100)


def test_trimming_does_nothing_under_budget_and_never_touches_recent() -> None:
    items = _conversation(2, 100)
    assert trim_tool_outputs(items, budget_chars=10_000) == 0
    items = _conversation(3, 10_000)
    assert trim_tool_outputs(items, budget_chars=10, keep_recent=3) == 0


def test_repo_config_parses_and_rejects_unknown_keys() -> None:
    config = parse_repo_config(
        '[setup]\nscript = "make deps"\nnetwork = true\nsecrets = ["TOKEN"]\n'
        '[checks]\ncommands = ["./check.sh"]\n'
    )
    assert config.setup.script == "make deps" and config.setup.network
    assert config.setup.secrets == ["TOKEN"] and config.checks.commands == ["./check.sh"]
    assert parse_repo_config("").setup.script is None
    with pytest.raises(RepoConfigError, match="setup"):
        parse_repo_config("[setup]\nscirpt = 'typo'\n")
    with pytest.raises(RepoConfigError, match="not valid TOML"):
        parse_repo_config("[setup\n")


def test_cost_only_with_prices() -> None:
    assert Prices().cost(1000, 100, 500) is None
    cost = Prices(input=2.0, cached_input=0.5, output=8.0).cost(1_000_000, 100_000, 400_000)
    assert cost == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 0.1 * 8.0)
    settings, problems = Settings.from_env(
        {"ERRAND_PRICE_INPUT": "1.25", "ERRAND_PRICE_OUTPUT": "10"}
    )
    assert problems == [] and settings.prices == Prices(input=1.25, output=10.0)
    _, problems = Settings.from_env({"ERRAND_PRICE_INPUT": "cheap"})
    assert problems and "prices must be numbers" in problems[0]
    settings, problems = Settings().with_init_options(
        {"prices": {"input": 1, "cachedInput": 0.1, "output": 4}}
    )
    assert problems == [] and settings.prices == Prices(1.0, 0.1, 4.0)
