"""Secrets: nothing of the server's environment reaches a sandboxed command."""

from __future__ import annotations

import os

import pytest

from support.probes import PYTHON, Places, inside, outside

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


def test_credential_files_in_home_are_out_of_reach(
    backend: str, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = places.base / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY-MATERIAL\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("aws_secret_access_key=AWS-SECRET\n")
    (home / ".netrc").write_text("machine example.com password NETRC-SECRET\n")
    monkeypatch.setenv("HOME", str(home))
    probe = f"cat {home}/.ssh/id_ed25519 {home}/.aws/credentials {home}/.netrc"
    shown = outside(probe).stdout
    assert "PRIVATE-KEY-MATERIAL" in shown and "AWS-SECRET" in shown and "NETRC-SECRET" in shown
    result = inside(backend, places, probe)
    assert result.exit_code != 0
    for secret in ("PRIVATE-KEY-MATERIAL", "AWS-SECRET", "NETRC-SECRET"):
        assert secret not in result.output


def test_no_privileges_inside(backend: str, places: Places) -> None:
    """No capabilities, no_new_privs set, and no way to make a new user namespace (which
    would hand out capabilities again)."""
    probe = (
        "grep -E '^(CapEff|NoNewPrivs):' /proc/self/status; "
        f'{PYTHON} -c "import ctypes; libc = ctypes.CDLL(None, use_errno=True); '
        "print('UNSHARED' if libc.unshare(0x10000000) == 0 else 'DENIED')\""
    )
    if os.getuid() == 0:
        shown = outside(probe).stdout
        assert "CapEff:\t0000000000000000" not in shown and "UNSHARED" in shown
    result = inside(backend, places, probe)
    assert "CapEff:\t0000000000000000" in result.output, result.output
    assert "NoNewPrivs:\t1" in result.output
    assert "DENIED" in result.output and "UNSHARED" not in result.output
