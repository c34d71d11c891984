"""bubblewrap backend: every command runs in fresh namespaces over a read-only host.

Layout inside the sandbox (built fresh for every command):

* ``/`` is the host's root bound read-only (submounts too); ``/dev`` is a minimal private
  devtmpfs, ``/proc`` belongs to the sandbox's own PID namespace.
* ``/tmp`` is a private, size-capped tmpfs; ``HOME`` is ``/tmp/home`` inside it.
* ``/run`` is an empty, read-only private tmpfs: it holds the sockets of docker, containerd,
  systemd, D-Bus and the user's session, and a Unix socket accepts connections even on a
  read-only mount. Other known daemon sockets (``~/.docker/run``, LXD, ``DOCKER_HOST``,
  ``SSH_AUTH_SOCK``…) and well-known credential stores under the server user's home
  (``~/.ssh``, ``~/.aws``…) are masked by empty read-only tmpfs mounts or an unreadable
  file.
* ``spec.read_only_binds`` (the object folders the copy's ``.git`` borrows, so that
  ``git`` works inside) are bound read-only at their own paths.
* The task copy (``spec.root``) is bound at its own path, read-write unless
  ``spec.writable`` is false; it is the working directory and the only writable place
  that outlives the command.
* New user, PID, IPC, UTS and (when the kernel allows) cgroup namespaces, and a new
  network namespace holding only a loopback device unless ``spec.network``. Nested user
  namespaces are disabled, every capability is dropped, ``--new-session`` stops TIOCSTI
  and ``--die-with-parent`` ties the sandbox to the server.
* The environment is an allowlist (:func:`errand.sandbox.env.sandbox_env`).
* The command runs as ``bash -lc`` with the sandbox's ``PATH`` restored after the login
  profile (:func:`errand.sandbox.env.shell_argv`).

Caps: wall time, output and process-group kill come from :mod:`errand.sandbox.process`;
``prlimit`` inside the sandbox sets RLIMIT_DATA/FSIZE/NPROC (NPROC counts per user
namespace, so per sandbox); as root, where the kernel ignores RLIMIT_NPROC, a cgroup
caps processes and memory when one can be created (:mod:`errand.sandbox.cgroup`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import tempfile
from pathlib import Path

from errand.sandbox import cgroup
from errand.sandbox.base import ExecResult, Limits, OutputSink, SandboxSpec, SandboxUnavailable
from errand.sandbox.env import sandbox_env, shell_argv
from errand.sandbox.process import CommandRunner, rlimit_argv

log = logging.getLogger(__name__)

HOME = "/tmp/home"
HOSTNAME = "errand"

SECRET_PATHS = (
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".kube",
    ".docker",
    ".config/gcloud",
    ".config/gh",
    ".config/hub",
    ".config/errand",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".pgpass",
)
"""Masked inside the sandbox, relative to the server user's home, when they exist."""

SOCKET_PATHS = (
    "/var/run",  # only when it is a real folder; usually a symlink to /run
    "/var/snap/lxd/common/lxd",
    "/var/lib/lxd",
    "/var/lib/incus",
    "/var/lib/docker",
)
HOME_SOCKET_PATHS = (".docker/run", ".colima", ".lima", ".local/share/containers")

_preflight_ok: set[str] = set()


def _fix_hint(stderr: str) -> str:
    text = stderr.lower()
    if "rtm_newaddr" in text or "loopback" in text:
        return (
            "The kernel refused to set up the sandbox's network namespace. On Ubuntu 23.10+ "
            "this is AppArmor's restriction of unprivileged user namespaces. Fix it with "
            "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (persist it in "
            "/etc/sysctl.d/), or install an AppArmor profile for /usr/bin/bwrap that allows "
            "`userns,` (see `man apparmor.d`)."
        )
    if "make / slave" in text or "mount namespace" in text:
        return (
            "bwrap cannot create a mount namespace, which happens inside a container that "
            "forbids mounts. Run the container with `--security-opt seccomp=unconfined "
            "--security-opt apparmor=unconfined` (or `--privileged`), run errand on the host, "
            "or use ERRAND_SANDBOX=docker against a Docker engine."
        )
    if (
        "no permissions to create new namespace" in text
        or "operation not permitted" in text
        or "unprivileged_userns_clone" in text
        or "setting up uid map" in text
        or "no space left on device" in text
    ):
        return (
            "Unprivileged user namespaces are disabled. Enable them with "
            "`sudo sysctl -w kernel.unprivileged_userns_clone=1` (older Debian kernels) and "
            "make sure `sysctl user.max_user_namespaces` is above 0; persist the setting in "
            "/etc/sysctl.d/. Or use ERRAND_SANDBOX=docker."
        )
    return "Check that bubblewrap works here: `bwrap --ro-bind / / --unshare-all true`."


def find_bwrap(bwrap: str | None = None) -> str:
    """Absolute path of the bwrap binary, or :class:`SandboxUnavailable` saying how to
    install it. ``bwrap`` may name a binary explicitly (tests use this)."""
    found = shutil.which(bwrap or "bwrap")
    if found is None:
        raise SandboxUnavailable(
            f"bubblewrap ({bwrap or 'bwrap'}) is not installed or not on PATH, so errand "
            "cannot sandbox commands. Install it (`sudo apt-get install bubblewrap`, "
            "`sudo dnf install bubblewrap`, `sudo pacman -S bubblewrap`), or choose "
            "ERRAND_SANDBOX=docker. errand never falls back to running unsandboxed; "
            "ERRAND_SANDBOX=none does that only when you ask for it."
        )
    if shutil.which("prlimit") is None:
        raise SandboxUnavailable(
            "`prlimit` (util-linux) is not on PATH; errand needs it to cap processes, "
            "memory and file size. Install util-linux."
        )
    return found


def _mask(path: Path, spec_root: Path) -> list[str]:
    """bwrap arguments hiding ``path``: an empty read-only tmpfs over a folder, an
    unreadable ``/dev/null`` over anything else. Nothing when it does not exist, is a
    symlink (its target gets its own entry, or lies elsewhere) or holds the task copy."""
    try:
        if spec_root == path or path in spec_root.parents or not os.path.lexists(path):
            return []
        if path.is_symlink():
            return []
        if path.is_dir():
            return ["--size", "4096", "--tmpfs", str(path), "--remount-ro", str(path)]
        return ["--ro-bind", "/dev/null", str(path)]
    except OSError:
        return []


def _secret_mounts(spec_root: Path) -> list[str]:
    args: list[str] = []
    home = os.environ.get("HOME")
    if home and os.path.isabs(home) and Path(home) != Path("/"):
        for rel in SECRET_PATHS:
            args += _mask(Path(home) / rel, spec_root)
    for path in _socket_paths(home):
        args += _mask(path, spec_root)
    return args


def _socket_paths(home: str | None) -> list[Path]:
    """Daemon sockets outside /run and /tmp (both replaced wholesale) that would let a
    command drive a more privileged process: container engines, agents."""
    paths = [Path(p) for p in SOCKET_PATHS]
    if home and os.path.isabs(home):
        paths += [Path(home) / rel for rel in HOME_SOCKET_PATHS]
    docker_host = os.environ.get("DOCKER_HOST", "")
    if docker_host.startswith("unix://"):
        paths.append(Path(docker_host.removeprefix("unix://")))
    for variable in ("SSH_AUTH_SOCK", "GPG_AGENT_INFO", "DBUS_SESSION_BUS_ADDRESS"):
        value = os.environ.get(variable, "")
        value = value.removeprefix("unix:path=").split(",")[0].split(":")[0]
        if os.path.isabs(value):
            paths.append(Path(value))
    return paths


def bwrap_argv(
    spec: SandboxSpec, command: str, *, bwrap: str = "bwrap", limits: Limits | None = None
) -> list[str]:
    """The full argv that runs ``command`` for ``spec``. Pure apart from reading ``HOME``
    and checking which credential paths exist."""
    limits = limits or spec.limits
    root = str(spec.root)
    tmp_size = str(max(1 << 20, limits.max_file_bytes))
    argv = [
        bwrap,
        "--unshare-user",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        HOSTNAME,
        "--unshare-cgroup-try",
    ]
    if not spec.network:
        argv.append("--unshare-net")
    argv += [
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--size",
        tmp_size,
        "--tmpfs",
        "/tmp",
        "--dir",
        HOME,
        # /run holds the sockets of docker, containerd, systemd, D-Bus and the user's
        # session (XDG_RUNTIME_DIR). A Unix socket accepts connections even on a read-only
        # mount, so the whole folder is replaced by an empty one.
        "--size",
        str(1 << 20),
        "--tmpfs",
        "/run",
    ]
    if spec.network and os.path.isdir("/run/systemd/resolve"):
        argv += ["--ro-bind", "/run/systemd/resolve", "/run/systemd/resolve"]
    argv += ["--remount-ro", "/run"]
    argv += _secret_mounts(spec.root)
    for alt in spec.read_only_binds:
        argv += ["--ro-bind", str(alt), str(alt)]
    argv += ["--bind" if spec.writable else "--ro-bind", root, root, "--chdir", root, "--"]
    argv += rlimit_argv(limits)
    argv += shell_argv(command)
    return argv


async def preflight(bwrap: str | None = None) -> str:
    """Check once per process that bwrap can build the sandbox here; return its path.

    Raises :class:`SandboxUnavailable` with a fix for each known failure. Only success is
    cached, so fixing the host and retrying works without a restart.
    """
    path = find_bwrap(bwrap)
    if path in _preflight_ok:
        return path
    with tempfile.TemporaryDirectory(prefix="errand-preflight-") as tmp:
        spec = SandboxSpec(root=Path(tmp).resolve())
        argv = bwrap_argv(spec, "true", bwrap=path)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=sandbox_env({}, home=HOME),
                cwd=tmp,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
        except (OSError, TimeoutError) as exc:
            raise SandboxUnavailable(f"bubblewrap ({path}) could not start: {exc}") from exc
    if proc.returncode != 0:
        stderr = out.decode("utf-8", errors="replace").strip()
        raise SandboxUnavailable(
            f"bubblewrap ({path}) cannot create a sandbox here: {stderr or 'no output'} "
            f"(exit {proc.returncode}). {_fix_hint(stderr)}"
        )
    _preflight_ok.add(path)
    return path


class BwrapSandbox:
    """A task copy sandboxed with bubblewrap; one fresh sandbox per command."""

    name = "bwrap"

    def __init__(self, spec: SandboxSpec, bwrap: str) -> None:
        self.spec = spec
        self._bwrap = bwrap
        self._runner = CommandRunner()
        self.warnings: tuple[str, ...] = ()
        if os.getuid() == 0 and cgroup.detect() is None:
            self.warnings = (
                "the process cap is not enforced: the server runs as root, where the kernel "
                "ignores RLIMIT_NPROC, and no cgroup could be created",
            )

    def argv(self, command: str, limits: Limits | None = None) -> list[str]:
        return bwrap_argv(self.spec, command, bwrap=self._bwrap, limits=limits)

    async def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        on_output: OutputSink | None = None,
    ) -> ExecResult:
        limits = self.spec.limits.with_timeout(timeout_s)
        return await self._runner.execute(
            self.argv(command, limits),
            env=sandbox_env(self.spec.env, home=HOME),
            cwd=self.spec.root,
            limits=limits,
            on_output=on_output,
        )

    async def close(self) -> None:
        await self._runner.close()


async def open(spec: SandboxSpec, *, bwrap: str | None = None) -> BwrapSandbox:
    """Open a bubblewrap sandbox on ``spec.root`` after the (cached) preflight."""
    path = await preflight(bwrap)
    root = spec.root.resolve()
    if not root.is_dir():
        raise SandboxUnavailable(f"sandbox root {root} is not a directory")
    return BwrapSandbox(dataclasses.replace(spec, root=root), path)
