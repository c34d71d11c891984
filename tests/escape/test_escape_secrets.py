"""Secrets: nothing of the server's environment reaches a sandboxed command."""

from __future__ import annotations

import pytest
from probes import Places, inside, outside

SECRETS = {
    "OPENAI_API_KEY": "sk-test-secret-openai",
    "OPENAI_BASE_URL": "https://secret-endpoint.invalid/v1",
    "GITHUB_TOKEN": "ghp-test-secret-github",
    "AWS_SECRET_ACCESS_KEY": "aws-test-secret",
    "ERRAND_PARENT_ONLY": "parent-only-value",
}

# Everything a command could read its environment from: its own, its parents', and any
# process it can see in /proc (the server's included, outside a sandbox).
PROBE = "env; for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f 2>/dev/null; done; true"


def test_environment_dump_shows_no_secrets(
    backend: str, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    shown_outside = outside(PROBE).stdout
    assert all(value in shown_outside for value in SECRETS.values())
    result = inside(backend, places, PROBE, env={"ALLOWED_EXTRA": "visible"})
    assert result.exit_code == 0
    for name, value in SECRETS.items():
        assert value not in result.output, name
    assert "OPENAI" not in result.output
    assert "ALLOWED_EXTRA=visible" in result.output
