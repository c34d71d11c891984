"""The sample repository and recorded session behind ``errand demo``.

The session (``demo.json``) is played by the in-process scripted model, which is not
a real model; the engine, the sandbox, the checks and the diff are the real ones.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from errand.config.settings import Settings
from errand.models.base import Model
from errand.models.scripted import Script, ScriptedModel, load_script
from errand.workspace import git

MODEL = ScriptedModel.name
DELAY_S = 0.015
"""Between streamed pieces of text, so the session reads as it plays."""

FILES: dict[str, str] = {
    "README.md": "# textkit\n\nSmall text helpers.\n",
    "AGENTS.md": "Run `python3 -m unittest -v` before finishing.\n",
    "textkit.py": (
        '"""Small text helpers."""\n'
        "\n"
        "import re\n"
        "\n"
        "\n"
        "def slugify(title: str) -> str:\n"
        '    """Turn a title into a URL slug."""\n'
        '    words = re.findall(r"[A-Za-z0-9]+", title)\n'
        '    return "-".join(words)\n'
    ),
    "test_textkit.py": (
        "import unittest\n"
        "\n"
        "from textkit import slugify\n"
        "\n"
        "\n"
        "class SlugifyTest(unittest.TestCase):\n"
        "    def test_lowercases_and_joins(self) -> None:\n"
        '        self.assertEqual(slugify("Hello, World!"), "hello-world")\n'
        "\n"
        "    def test_keeps_digits(self) -> None:\n"
        '        self.assertEqual(slugify("Top 10 Tips"), "top-10-tips")\n'
        "\n"
        "\n"
        'if __name__ == "__main__":\n'
        "    unittest.main()\n"
    ),
}

PROMPT = "The slugify tests fail. Fix slugify so they pass."


def script() -> Script:
    return load_script((resources.files("errand.frontends.demo") / "demo.json").read_bytes())


def model_factory(settings: Settings) -> Model:
    """The engine's model factory for the demo: the scripted model, whatever the settings."""
    return ScriptedModel(script().turns, delay_s=DELAY_S)


def create_repository(folder: Path) -> Path:
    """Write the sample repository (with its failing test) and commit it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
    git.run(["init", "--quiet", "--initial-branch=main"], cwd=folder)
    git.run(["add", "--all"], cwd=folder)
    git.run(["commit", "--quiet", "-m", "textkit: slugify"], cwd=folder)
    return folder
