"""Docker backend: one container per sandbox, managed through the ``docker`` package.

The container:

* runs the configured image (``ERRAND_DOCKER_IMAGE``, default :data:`DEFAULT_IMAGE`)
  with ``network_mode="none"`` (``spec.network`` — the opt-in setup step — uses
  ``ERRAND_DOCKER_NETWORK``, default ``bridge``), a read-only root filesystem, a
  private size-capped tmpfs ``/tmp`` (``HOME`` is ``/tmp/home``) and the task copy
  bind-mounted at its own path, read-write unless ``spec.writable`` is false: the only
  writable place that outlives a command. The object folders the copy's ``.git``
  borrows are bound read-only.
* runs as a non-root user: the owner of the task copy, or uid/gid 1000 when the copy
  belongs to root (the copy is then handed to that uid before each command);
* drops every capability, sets ``no-new-privileges``, runs Docker's init as PID 1 and
  caps processes (``pids_limit``), memory (``mem_limit``, no swap), CPU (``nano_cpus``,
  ``ERRAND_DOCKER_CPUS``, default 1) and file size (``fsize`` ulimit);
* is labelled ``errand=1``, ``errand.task=<root>`` and ``errand.owner`` (the server's
  host, boot id, PID namespace, pid and start time: :mod:`errand.sandbox.owner`), removed
  on :meth:`DockerSandbox.close`, and removed by :func:`reap_orphans` at the next start
  if a server crashed before closing it (never while that server runs, in whatever PID
  namespace).

Each command runs as ``docker exec … bash -lc <command>`` through
:func:`errand.sandbox.process.run_process`, i.e. the ``docker`` CLI rather than the SDK's
``exec_run``: the CLI streams output as it comes and returns the command's own exit code
(128+N when killed by signal N), and it is an ordinary child process for the timeout and
output caps. Killing the CLI does not kill what runs in the container, so on timeout,
cancellation, output cap or close the sandbox kills every process of the sandbox user in
the container (``kill -9 -1``, which spares PID 1), and restarts the container when even
that exec cannot start (a fork bomb at the pids limit). Leftover background jobs are
killed the same way after each command, as with bubblewrap. Commands in one sandbox run
one at a time.

``DOCKER_HOST`` (and the TLS variables) are honoured by both the SDK and the CLI, so a
remote engine works unchanged — provided it sees the task copy at the same path (bind
mounts are resolved on the engine's host).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from docker.errors import DockerException
from requests import RequestException

from errand.sandbox import owner
from errand.sandbox.base import ExecResult, Limits, OutputSink, SandboxSpec, SandboxUnavailable
from errand.sandbox.env import DEFAULT_PATH, sandbox_env, shell_argv
from errand.sandbox.process import run_process

log = logging.getLogger(__name__)

ENGINE_ERRORS: tuple[type[Exception], ...] = (DockerException, RequestException, OSError)

DEFAULT_IMAGE = "errand-sandbox:latest"
HOME = "/tmp/home"
FALLBACK_UID = 1000
KEEPALIVE_UIDS = (65534, 65533)
"""The container's PID 1 and keep-alive process run as one of these (never the sandbox
user), so the sandbox user's ``kill -9 -1`` cannot stop the container."""
OOM_FILES = "/sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control"
KILL_SCRIPT = "for i in 1 2 3 4 5; do kill -9 -1 2>/dev/null || exit 0; done"
LABEL = "errand"
CLI_ENV_KEYS = (
    "DOCKER_HOST",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_API_VERSION",
    "HOME",
    "PATH",
)


def owner_label() -> str:
    """The ``errand.owner`` label of this server's containers (see :mod:`errand.sandbox.owner`)."""
    return owner.label()


def _client() -> Any:
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise SandboxUnavailable(
            f"no Docker engine answers at {where} ({exc}). Start one "
            "(`sudo systemctl start docker`, or this repository's scripts/start-dockerd.sh), "
            "point DOCKER_HOST at a running engine, or choose ERRAND_SANDBOX=bwrap."
        ) from exc
    return client


def _cli_env() -> dict[str, str]:
    return {k: os.environ[k] for k in CLI_ENV_KEYS if k in os.environ}


def _hand_over(root: Path, uid: int, gid: int) -> None:
    """Give every entry of the copy to ``uid:gid`` (files the server wrote as root)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            try:
                st = os.lstat(name)
                if st.st_uid != uid or st.st_gid != gid:
                    os.lchown(name, uid, gid)
            except OSError:
                continue


class DockerSandbox:
    name = "docker"

    def __init__(
        self,
        spec: SandboxSpec,
        container: Any,
        docker_cli: str,
        user: tuple[int, int],
        hand_over: bool,
    ) -> None:
        self.spec = spec
        self.warnings: tuple[str, ...] = ()
        self.container = container
        self._cli = docker_cli
        self._uid, self._gid = user
        self._hand_over = hand_over
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._closed = False
        self._kills: list[asyncio.Task[None]] = []
        self._oom_seen = 0

    async def _docker(self, *args: str, timeout: float = 30) -> int:
        proc = await asyncio.create_subprocess_exec(
            self._cli,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=_cli_env(),
        )
        try:
            return await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return -1

    async def kill_all(self) -> None:
        """Kill every process of the sandbox user in the container (not PID 1)."""
        user = f"{self._uid}:{self._gid}"
        code = await self._docker("exec", "-u", user, self.container.id, "bash", "-c", KILL_SCRIPT)
        if code != 0:
            log.warning("kill inside %s failed (%s); restarting it", self.container.short_id, code)
            await asyncio.to_thread(_restart, self.container, user, str(self.spec.root))

    def _schedule_kill(self) -> None:
        self._kills.append(asyncio.get_running_loop().create_task(self.kill_all()))

    async def _leftovers(self) -> bool:
        def count() -> int:
            top = self.container.top(ps_args="-e")
            return len(top.get("Processes") or [])

        try:
            return await asyncio.to_thread(count) > 2  # docker-init and the keep-alive sleep
        except ENGINE_ERRORS:
            return True

    async def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        on_output: OutputSink | None = None,
    ) -> ExecResult:
        if self._closed:
            raise RuntimeError("sandbox is closed")
        limits = self.spec.limits.with_timeout(timeout_s)
        async with self._lock:
            if self._hand_over and self.spec.writable:
                await asyncio.to_thread(_hand_over, self.spec.root, self._uid, self._gid)
            argv = [
                self._cli,
                "exec",
                "-u",
                f"{self._uid}:{self._gid}",
                "-w",
                str(self.spec.root),
                self.container.id,
                *shell_argv(command),
            ]
            try:
                result = await run_process(
                    argv,
                    env=_cli_env(),
                    cwd=self.spec.root,
                    limits=limits,
                    on_output=on_output,
                    stop=self._stop,
                    on_kill=self._schedule_kill,
                )
            finally:
                kills, self._kills = self._kills, []
                if kills:
                    await asyncio.shield(asyncio.gather(*kills, return_exceptions=True))
            if not self._closed and await self._leftovers():
                await self.kill_all()
            if result.killed_reason is None and result.exit_code == 137:
                with contextlib.suppress(*ENGINE_ERRORS):
                    oom_kills = await asyncio.to_thread(self._oom_kills)
                    if oom_kills > self._oom_seen:
                        self._oom_seen = oom_kills
                        result = dataclasses.replace(result, killed_reason="memory cap")
            return result

    def _oom_kills(self) -> int:
        """OOM kills so far in the container's memory cgroup (v1 or v2), read inside."""
        _, out = self.container.exec_run(
            ["bash", "-c", f"cat {OOM_FILES} 2>/dev/null"], user=f"{self._uid}:{self._gid}"
        )
        for line in out.decode("utf-8", errors="replace").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        async with self._lock:
            pass  # the running command, if any, has been killed and returned
        await asyncio.to_thread(_remove, self.container)


def _prepare_user(container: Any, user: str, root: str) -> None:
    """Create HOME and check that the sandbox user can enter the task copy."""
    script = f"mkdir -p {HOME} && cd {shlex.quote(root)}"
    code, out = container.exec_run(["bash", "-c", script], user=user)
    if code != 0:
        text = out.decode("utf-8", errors="replace").strip()
        raise SandboxUnavailable(
            f"the sandbox user {user} cannot work in {root} inside the container ({text}). "
            "The image needs bash, and every folder above the task copy must be enterable "
            "by that user in the image: keep errand's data folder (ERRAND_DATA_DIR) outside "
            "/root, for example under /var/lib/errand."
        )


def _restart(container: Any, user: str, root: str) -> None:
    """Kill everything in the container (through its cgroup) and start it afresh."""
    container.restart(timeout=0)
    _prepare_user(container, user, root)


def _remove(container: Any) -> None:
    try:
        container.remove(force=True, v=True)
    except ENGINE_ERRORS as exc:
        if getattr(exc, "status_code", None) != 404:
            log.warning("could not remove container %s: %s", container.short_id, exc)


def _user_for(root: Path) -> tuple[int, int]:
    st = root.stat()
    if st.st_uid == 0:
        return FALLBACK_UID, FALLBACK_UID
    return st.st_uid, st.st_gid


def _create(client: Any, spec: SandboxSpec, image: str, user: tuple[int, int]) -> Any:
    from docker.errors import ImageNotFound
    from docker.types import Mount, Ulimit

    try:
        client.images.get(image)
    except ImageNotFound as exc:
        raise SandboxUnavailable(
            f"Docker image {image!r} is not available on the engine. Build or pull it "
            "(it needs bash), or set ERRAND_DOCKER_IMAGE to an image that exists."
        ) from exc
    limits: Limits = spec.limits
    root = str(spec.root)
    mounts = [Mount(target=root, source=root, type="bind", read_only=not spec.writable)]
    mounts += [
        Mount(target=str(alt), source=str(alt), type="bind", read_only=True)
        for alt in spec.read_only_binds
    ]
    cpus = float(os.environ.get("ERRAND_DOCKER_CPUS", "1"))
    env = sandbox_env(spec.env, home=HOME, path=DEFAULT_PATH)
    container = client.containers.create(
        image,
        command=["sleep", "infinity"],
        entrypoint=[],
        user=next(f"{u}:{u}" for u in KEEPALIVE_UIDS if u != user[0]),
        working_dir=root,
        environment=env,
        hostname="errand",
        network_mode=os.environ.get("ERRAND_DOCKER_NETWORK", "bridge") if spec.network else "none",
        read_only=True,
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={max(1 << 20, limits.max_file_bytes)},mode=1777"},
        mounts=mounts,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        init=True,
        pids_limit=limits.max_processes,
        mem_limit=limits.max_memory_bytes,
        memswap_limit=limits.max_memory_bytes,
        nano_cpus=int(cpus * 1e9),
        ulimits=[
            Ulimit(name="fsize", soft=limits.max_file_bytes, hard=limits.max_file_bytes),
            Ulimit(name="core", soft=0, hard=0),
        ],
        labels={LABEL: "1", f"{LABEL}.task": root, f"{LABEL}.owner": owner_label()},
        detach=True,
    )
    try:
        container.start()
        _prepare_user(container, f"{user[0]}:{user[1]}", root)
    except BaseException:
        _remove(container)
        raise
    return container


async def open(spec: SandboxSpec, *, image: str | None = None) -> DockerSandbox:
    """Create and start the container for ``spec``. Raises :class:`SandboxUnavailable`
    when the engine, the image or the ``docker`` CLI is missing."""
    image = image or os.environ.get("ERRAND_DOCKER_IMAGE") or DEFAULT_IMAGE
    cli = shutil.which("docker")
    if cli is None:
        raise SandboxUnavailable(
            "the `docker` command-line client is not on PATH (Debian: apt-get install docker.io)"
        )
    root = spec.root.resolve()
    if not root.is_dir():
        raise SandboxUnavailable(f"sandbox root {root} is not a directory")
    spec = dataclasses.replace(spec, root=root)
    client = await asyncio.to_thread(_client)
    user = _user_for(root)
    hand_over = user[0] != root.stat().st_uid
    if hand_over and spec.writable:
        await asyncio.to_thread(_hand_over, root, *user)
    container = await asyncio.to_thread(_create, client, spec, image, user)
    return DockerSandbox(spec, container, cli, user, hand_over)


def reap_orphans_sync() -> int:
    """Remove errand containers whose server is shown to be gone by its owner label
    (:func:`errand.sandbox.owner.alive`): a live server's container is kept even when that
    server runs in another PID namespace (a container, CI under ``unshare``), and so is
    a container with no owner label or one that cannot be judged. Returns how many were
    removed."""
    try:
        client = _client()
    except SandboxUnavailable:
        return 0
    removed = 0
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        label = container.labels.get(f"{LABEL}.owner")
        if label is None or owner.alive(label):
            continue
        log.info("removing orphaned sandbox container %s (%s)", container.short_id, label)
        _remove(container)
        removed += 1
    return removed


async def reap_orphans() -> int:
    """Run at server start: remove sandbox containers that a crashed server left behind."""
    return await asyncio.to_thread(reap_orphans_sync)
