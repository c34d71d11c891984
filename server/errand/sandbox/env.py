"""The environment of a sandboxed command: a fixed allowlist of variables, and the shell
that keeps the sandbox's ``PATH`` through the login profile. Every backend uses both."""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SANDBOX_PATH_VAR = "ERRAND_SANDBOX_PATH"


def shell_argv(command: str) -> list[str]:
    """``bash -lc`` as the agent contract says, with the sandbox's ``PATH`` restored
    after the login profile: Debian's ``/etc/profile`` resets ``PATH`` and would drop
    the project's toolchain."""
    return ["bash", "-lc", f'PATH="${{{SANDBOX_PATH_VAR}:-$PATH}}"\n{command}']


def sandbox_env(extra: Mapping[str, str], *, home: str, path: str | None = None) -> dict[str, str]:
    """The whole environment of a sandboxed command: a fixed allowlist plus ``extra``.

    Nothing comes from the server's environment except ``PATH`` (so the project's
    toolchain is found; relative and empty entries are dropped). No ``OPENAI_*`` variable,
    token or any other parent variable can reach the command.
    """
    if path is None:
        path = os.environ.get("PATH", DEFAULT_PATH)
    clean_path = ":".join(p for p in path.split(":") if p.startswith("/")) or DEFAULT_PATH
    env = {
        "PATH": clean_path,
        SANDBOX_PATH_VAR: clean_path,
        "HOME": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "TMPDIR": "/tmp",
        "PAGER": "cat",
        "GIT_PAGER": "cat",
    }
    env.update(extra)
    return env
