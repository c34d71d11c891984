"""AGENTS.md discovery, merging, the cap and check commands, on real folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from errand.agent.evidence.agents_md import (
    DEFAULT_LIMIT,
    AgentsDoc,
    agents_doc,
    candidate_paths,
    extract_check_commands,
    user_instructions,
)
from errand.agent.evidence.checks import is_check
from errand.hosts.local import read_inside


def load_agents_md(repo: Path, cwd: Path, *, limit: int = DEFAULT_LIMIT) -> AgentsDoc:
    """The rules for ``cwd`` read from real folders as the engine reads them: the
    candidate files through the local host's confined reader, then joined."""
    try:
        subdir = cwd.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        subdir = ".."  # outside the repository: only the root's rules
    contents = {path: read_inside(repo, path) for path in candidate_paths(subdir)}
    return agents_doc(subdir, contents, limit=limit)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_root_to_leaf_one_file_per_folder_override_first(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "AGENTS.md": "root rules\n",
            "pkg/AGENTS.md": "pkg rules (ignored: override wins)\n",
            "pkg/AGENTS.override.md": "pkg override rules\n",
            "pkg/sub/AGENTS.md": "sub rules\n",
            "pkg/sub/deeper/notes.md": "not an AGENTS file\n",
            "other/AGENTS.md": "a sibling folder, not on the path\n",
        },
    )
    doc = load_agents_md(tmp_path, tmp_path / "pkg" / "sub" / "deeper")
    assert doc.files == ["AGENTS.md", "pkg/AGENTS.override.md", "pkg/sub/AGENTS.md"]
    assert doc.text == (
        "--- AGENTS.md ---\nroot rules\n\n"
        "--- pkg/AGENTS.override.md ---\npkg override rules\n\n"
        "--- pkg/sub/AGENTS.md ---\nsub rules"
    )
    assert "ignored" not in doc.text
    assert "sibling" not in doc.text
    assert not doc.truncated


def test_empty_override_falls_back_and_cwd_at_root(tmp_path: Path) -> None:
    _write(tmp_path, {"AGENTS.override.md": "  \n\n", "AGENTS.md": "use tabs\n"})
    doc = load_agents_md(tmp_path, tmp_path)
    assert doc.files == ["AGENTS.md"]
    assert doc.text == "--- AGENTS.md ---\nuse tabs"


def test_no_files_and_cwd_outside_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert load_agents_md(repo, repo) == AgentsDoc()
    assert user_instructions(AgentsDoc()) == ""
    _write(repo, {"AGENTS.md": "root only\n"})
    _write(tmp_path, {"elsewhere/AGENTS.md": "outside\n"})
    doc = load_agents_md(repo, tmp_path / "elsewhere")
    assert doc.files == ["AGENTS.md"]


def test_symlink_leading_out_of_the_repository_is_ignored(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _write(tmp_path, {"secret.md": "outside text\n", "repo/sub/AGENTS.md": "inside\n"})
    (repo / "AGENTS.md").symlink_to(tmp_path / "secret.md")
    doc = load_agents_md(repo, repo / "sub")
    assert doc.files == ["sub/AGENTS.md"]
    assert "outside text" not in doc.text


def test_cap_keeps_the_deepest_files_whole(tmp_path: Path) -> None:
    root_text = "R" * 30_000 + "\nroot tail\n"
    leaf_text = "leaf rule: " + "L" * 5_000 + "\n"
    _write(tmp_path, {"AGENTS.md": root_text, "a/AGENTS.md": leaf_text})
    doc = load_agents_md(tmp_path, tmp_path / "a")
    assert doc.truncated
    assert doc.files == ["AGENTS.md", "a/AGENTS.md"]
    assert leaf_text.strip() in doc.text  # the deepest file is whole
    assert "root tail" not in doc.text  # the root file lost its end
    assert "capped at 32768 bytes" in doc.text
    kept_root = doc.text.split("--- a/AGENTS.md ---")[0]
    assert kept_root.count("R") == 32 * 1024 - len(leaf_text.strip().encode())


def test_cap_drops_shallow_files_that_have_no_room(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {"AGENTS.md": "root\n", "a/AGENTS.md": "middle\n", "a/b/AGENTS.md": "x" * 100 + "\n"},
    )
    doc = load_agents_md(tmp_path, tmp_path / "a" / "b", limit=103)
    assert doc.truncated
    sections = doc.text.split("\n\n")
    assert (
        sections[0]
        == "--- AGENTS.md ---\n[errand: cut here; AGENTS files are capped at 103 bytes in total]"
    )
    assert (
        sections[1]
        == "--- a/AGENTS.md ---\n"
        + "mid"
        + "\n[errand: cut here; AGENTS files are capped at 103 bytes in total]"
    )
    assert sections[2] == "--- a/b/AGENTS.md ---\n" + "x" * 100


def test_cap_does_not_split_a_character(tmp_path: Path) -> None:
    _write(tmp_path, {"AGENTS.md": "ééé\n"})  # 2 bytes each
    doc = load_agents_md(tmp_path, tmp_path, limit=3)
    assert doc.text.startswith("--- AGENTS.md ---\né\n[errand: cut here")


AGENTS_WITH_CHECKS = """\
# Contributing

Put new tests in `tests/unit` and use `pytest.fixture` for setup.
Install with `pip install -e .` and `npm install`.

## Testing

Run `just ci` before committing. Lint with `ruff check .` and `./scripts/lint.sh`.
Tests must not touch the `network`.

```sh
$ uv run pytest -q
make check
# a comment
git status
```

```python
def test_example():
    assert check()
```

## Style

Format with `prettier --write` and name things in `snake_case`.
"""


def test_check_commands_from_code_spans_and_blocks() -> None:
    assert extract_check_commands(AGENTS_WITH_CHECKS) == [
        "just ci",
        "ruff check .",
        "./scripts/lint.sh",
        "uv run pytest -q",
        "make check",
    ]


def test_check_commands_are_collected_from_every_file_without_repeats(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "AGENTS.md": "Run `make test` before you finish.\n",
            "web/AGENTS.md": "## Checks\n- `pnpm lint`\n- `make test`\n",
        },
    )
    doc = load_agents_md(tmp_path, tmp_path / "web")
    assert doc.check_commands == ["make test", "pnpm lint"]
    # Named commands widen what errand recognises as checks.
    assert not is_check("pnpm lint --fix")
    assert is_check("pnpm lint --fix", doc.check_commands)


def test_user_instructions_block(tmp_path: Path) -> None:
    _write(tmp_path, {"AGENTS.md": "Always run `tox -e py311`.\n"})
    block = user_instructions(load_agents_md(tmp_path, tmp_path))
    assert block.startswith("<repository_instructions>\n")
    assert block.endswith("\n</repository_instructions>")
    assert "--- AGENTS.md ---\nAlways run `tox -e py311`." in block
    assert "deeper file wins" in block
    assert "even for a change to documentation only): `tox -e py311`" in block


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("Before committing, run `lint`.", ["lint"]),  # one word, but the line says run
        ("The `lint` module holds helpers for tests.", []),  # one word, no "run"
        ("Run `make` to build.", []),  # no check word anywhere
        ("## Verify\n\n```bash\n./bin/verify --all\n```\n", ["./bin/verify --all"]),
        ("```bash\nnpm ci\n```\n", []),  # no check context
        ("Checks: `git diff --check`", []),  # git sets nothing up, but is never a check
    ],
)
def test_check_command_heuristic(markdown: str, expected: list[str]) -> None:
    assert extract_check_commands(markdown) == expected
