"""End to end: `errand demo` as a user runs it, with no API key and no model server.
The model is the in-process scripted one; the engine, bubblewrap, checks and diff are
real, and the output says the model is scripted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from errand.frontends import demo

pytestmark = pytest.mark.e2e


def test_demo_fixes_the_sample_and_says_its_model_is_scripted(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ERRAND_"))}
    env["TMPDIR"] = str(tmp_path)
    command = [sys.executable, "-m", "errand.frontends.cli.main", "demo"]
    result = subprocess.run(
        [*command, "--data-dir", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "SCRIPTED model" in out and "not a real model" in out
    assert "http://" not in out + result.stderr

    # The checks come from the recorded runs: the test failed, then passed.
    assert re.search(r"✗ failed\s+python3 -m unittest -v\s+exit 1", out), out
    assert re.search(r"✓ passed\s+python3 -m unittest -v\s+exit 0", out), out
    assert "Citations: 4/4 resolved" in out
    assert "● task " in out and ": completed" in out

    # The diff is the fix, and the sample repository is untouched until applied.
    assert '-    return "-".join(words)\n' in out
    assert '+    return "-".join(word.lower() for word in words)\n' in out
    found = re.search(r"sample repository with a failing test at (\S+)", out)
    assert found, out
    repo = Path(found.group(1))
    assert repo.is_relative_to(tmp_path)
    assert (repo / "textkit.py").read_text() == demo.FILES["textkit.py"]
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
