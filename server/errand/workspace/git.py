"""A thin, safe way to run git through GitPython.

Every call is blocking; callers on the event loop go through ``asyncio.to_thread``.
Hooks never run: ``core.hooksPath`` points at an empty place and fsmonitor is off.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import git

SAFE_CONFIG: tuple[str, ...] = (
    "-c",
    f"core.hooksPath={os.devnull}",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "gc.auto=0",
    "-c",
    "maintenance.auto=false",
)

IDENTITY: dict[str, str] = {
    "GIT_AUTHOR_NAME": "errand",
    "GIT_AUTHOR_EMAIL": "errand@localhost",
    "GIT_COMMITTER_NAME": "errand",
    "GIT_COMMITTER_EMAIL": "errand@localhost",
}

ISOLATED: dict[str, str] = {
    # Task copies hold files a model wrote: never let the user's global or system
    # configuration (filters, textconv, external diff) act on them.
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

# Variables that would redirect git away from what we ask for.
_SCRUBBED = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
)


class GitError(RuntimeError):
    """A git command failed; the message carries git's own words."""


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    merged.update(IDENTITY)
    merged["GIT_TERMINAL_PROMPT"] = "0"
    merged["LC_ALL"] = "C"
    if env:
        merged.update(env)
    return merged


def run(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    strip: bool = True,
) -> str:
    """Run ``git args`` and return stdout as text."""
    text = run_bytes(args, cwd=cwd, env=env, input_bytes=input_bytes).decode(
        "utf-8", "surrogateescape"
    )
    return text.strip("\n") if strip else text


def run_bytes(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
) -> bytes:
    """Run ``git args`` and return raw stdout."""
    runner = git.Git(str(cwd) if cwd else None)
    command = ["git", *SAFE_CONFIG, *args]
    try:
        if input_bytes is None:
            out = runner.execute(
                command,
                env=_environment(env),
                stdout_as_string=False,
                strip_newline_in_stdout=False,
            )
        else:
            proc = runner.execute(
                command,
                env=_environment(env),
                as_process=True,
                istream=subprocess.PIPE,
            )
            popen = proc.proc
            assert popen is not None
            stdout, stderr = popen.communicate(input_bytes)
            if popen.returncode != 0:
                raise GitError(f"git {' '.join(args)}: {stderr.decode(errors='replace').strip()}")
            out = stdout
    except git.GitCommandError as exc:
        detail = exc.stderr.strip() if isinstance(exc.stderr, str) else str(exc)
        raise GitError(f"git {' '.join(args)}: {detail}") from exc
    assert isinstance(out, bytes)
    return out


def merge_file(current: bytes, base: bytes, other: bytes) -> tuple[bool, bytes]:
    """``git merge-file`` of three versions. Returns (clean, merged bytes); when not
    clean the bytes hold conflict markers and must not be written anywhere."""
    with tempfile.TemporaryDirectory(prefix="errand-merge-") as tmp:
        paths = []
        for name, data in (("current", current), ("base", base), ("other", other)):
            path = Path(tmp) / name
            path.write_bytes(data)
            paths.append(str(path))
        status, out, err = git.Git(tmp).execute(
            ["git", "merge-file", "-p", "-q", *paths],
            env=_environment(ISOLATED),
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
        )
    if status < 0:
        raise GitError(f"git merge-file failed: {err!r}")
    assert isinstance(out, bytes)
    return status == 0, out
