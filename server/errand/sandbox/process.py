"""Run one child process with a wall-time cap, bounded output capture and group kill.

Every backend ends up here: bwrap and none spawn ``bwrap …``/``bash -c …`` directly, docker
spawns ``docker exec …``. The conventions, shared by all backends:

* stdout and stderr are merged into one pipe, read in chunks, decoded incrementally as
  UTF-8 (invalid bytes become U+FFFD) and handed to ``on_output`` as they arrive.
* The captured :attr:`ExecResult.output` keeps at most ``max_output_bytes``: the first and
  the last half. The middle is replaced by one marker line (:data:`CUT_MARKER`) that says
  how many bytes were cut. Reading goes on, so the child never blocks on a full pipe.
* A command that prints more than ``OUTPUT_KILL_FACTOR × max_output_bytes`` in total is
  killed (``killed_reason="output cap"``); ``on_output`` never receives more than that.
* At ``timeout_s`` the whole process group is killed with SIGKILL; the result has
  ``timed_out=True``, ``killed_reason="timeout"`` and ``exit_code`` :data:`TIMEOUT_EXIT_CODE`
  (124, as coreutils ``timeout`` reports).
* A process that died from a signal reports ``128 + signal`` (137 for SIGKILL), as shells do.
* When the command's main process exits, whatever it left running in its process group is
  killed too: a command's background jobs never outlive it (bwrap gives the same through
  its PID namespace).
* Cancelling the awaiting task kills the group, reaps the child, then re-raises
  :class:`asyncio.CancelledError`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from errand.sandbox.base import ExecResult, Limits, OutputSink
from errand.sandbox.cgroup import CommandCgroup

log = logging.getLogger(__name__)

TIMEOUT_EXIT_CODE = 124
"""Exit code reported for a command killed at its wall-time cap."""

OUTPUT_KILL_FACTOR = 8
"""A command printing more than this many times ``max_output_bytes`` is killed."""

CHUNK_BYTES = 64 * 1024
DRAIN_GRACE_S = 2.0
"""After the main process exited and its group was killed, how long to wait for the pipe
to close (a process that left the group may still hold it) before giving up on it."""

CUT_MARKER = "[errand: {cut} bytes of output cut]"


def rlimit_argv(limits: Limits, *, nproc: bool = True) -> list[str]:
    """``prlimit`` (util-linux) prefix that applies ``limits`` to the command it runs.

    Memory is capped with RLIMIT_DATA (private writable memory, what ``malloc`` uses)
    rather than RLIMIT_AS, so runtimes that reserve large virtual ranges (Go, JVM, V8)
    still start. RLIMIT_NPROC counts processes per user *namespace*: apply it inside the
    sandbox's own user namespace so it is a per-sandbox count. The kernel never enforces
    it for uid 0 of the initial namespace (see :mod:`errand.sandbox.cgroup`).
    """
    argv = [
        "prlimit",
        f"--data={limits.max_memory_bytes}:{limits.max_memory_bytes}",
        f"--fsize={limits.max_file_bytes}:{limits.max_file_bytes}",
        "--core=0:0",
    ]
    if nproc:
        argv.append(f"--nproc={limits.max_processes}:{limits.max_processes}")
    argv.append("--")
    return argv


@dataclass(slots=True)
class _Capture:
    """Head and tail of a byte stream, bounded to ``limit`` bytes in memory."""

    limit: int
    total: int = 0
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        half = self.limit - self.limit // 2
        room = half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        keep = self.limit // 2
        if len(self.tail) > 2 * keep + CHUNK_BYTES:
            del self.tail[: len(self.tail) - keep]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def text(self) -> str:
        if not self.truncated:
            return bytes(self.head + self.tail).decode("utf-8", errors="replace")
        keep = self.limit // 2
        tail = bytes(self.tail[len(self.tail) - keep :]) if keep else b""
        cut = self.total - len(self.head) - len(tail)
        head_text = bytes(self.head).decode("utf-8", errors="replace")
        tail_text = tail.decode("utf-8", errors="replace")
        sep_before = "" if not head_text or head_text.endswith("\n") else "\n"
        return f"{head_text}{sep_before}{CUT_MARKER.format(cut=cut)}\n{tail_text}"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def exit_code_of(returncode: int) -> int:
    """asyncio reports death by signal N as ``-N``; shells report ``128 + N``."""
    return 128 - returncode if returncode < 0 else returncode


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | str,
    limits: Limits,
    on_output: OutputSink | None = None,
    stop: asyncio.Event | None = None,
    on_kill: Callable[[], None] | None = None,
) -> ExecResult:
    """Run ``argv`` in a new session and process group; see the module docstring.

    ``env`` is the child's whole environment (nothing is inherited). ``stop``, when set
    while the command runs, kills it (``killed_reason="sandbox closed"``); backends use it
    to implement ``close()``. ``on_kill`` is called whenever the group is killed, to
    kill what a backend tracks beyond the process group (a cgroup, a container).
    """
    run = _Run(limits, on_output, on_kill)
    await run.spawn(argv, env=env, cwd=cwd)
    returncode = await run.supervise(stop)
    return run.result(returncode)


class _Run:
    """The state of one :func:`run_process` call, and its steps: :meth:`spawn` the child,
    :meth:`pump` its output, :meth:`supervise` it until it exits or is killed,
    :meth:`drain` the pipe, and build the :meth:`result`."""

    proc: asyncio.subprocess.Process
    stream: asyncio.StreamReader
    pipe_transport: asyncio.ReadTransport
    pgid: int

    def __init__(
        self,
        limits: Limits,
        on_output: OutputSink | None,
        on_kill: Callable[[], None] | None,
    ) -> None:
        self.started = time.monotonic()
        self.limits = limits
        self.on_output = on_output
        self.on_kill = on_kill
        self.capture = _Capture(max(0, limits.max_output_bytes))
        self.hard_cap = max(1, limits.max_output_bytes) * OUTPUT_KILL_FACTOR
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.killed_reason: str | None = None
        self.streamed = 0
        self.cap_hit = False
        self.timed_out = False

    async def spawn(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | str) -> None:
        """Start the child as the leader of a new session, its output on a pipe we read."""
        # Our own pipe rather than asyncio's: Process.wait() would otherwise also wait for the
        # pipe to close, which a leftover grandchild can hold open indefinitely.
        read_fd, write_fd = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                env=dict(env),
                cwd=str(cwd),
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        self.stream = stream = asyncio.StreamReader(limit=CHUNK_BYTES, loop=loop)
        try:
            self.pipe_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(stream, loop=loop),
                os.fdopen(read_fd, "rb", buffering=0),
            )
        except BaseException:
            _kill_group(self.proc.pid)
            raise
        self.pgid = self.proc.pid  # start_new_session: the child leads its own session and group

    def kill(self) -> None:
        _kill_group(self.pgid)
        if self.on_kill is not None:
            self.on_kill()

    def deliver(self, data: bytes, final: bool = False) -> None:
        text = self.decoder.decode(data, final)
        if text and self.on_output is not None:
            self.on_output(text)

    async def pump(self) -> None:
        """Read the pipe to its end: capture, stream up to the hard cap, kill past it."""
        while True:
            chunk = await self.stream.read(CHUNK_BYTES)
            if not chunk:
                break
            self.capture.add(chunk)
            if self.streamed < self.hard_cap:
                part = chunk[: self.hard_cap - self.streamed]
                self.streamed += len(part)
                self.deliver(part)
            if self.capture.total > self.hard_cap and not self.cap_hit:
                self.cap_hit = True
                if self.killed_reason is None:
                    self.killed_reason = "output cap"
                self.kill()
        self.deliver(b"", final=True)

    async def supervise(self, stop: asyncio.Event | None) -> int:
        """Run the child to its end (exit, deadline or ``stop``), kill its group, drain
        the pipe; the child's return code. On any exception, cancellation included, kill
        the group, reap the child (for at most :data:`DRAIN_GRACE_S`) and re-raise."""
        proc = self.proc
        reader = asyncio.create_task(self.pump(), name=f"errand-output-{proc.pid}")
        waiter = asyncio.create_task(proc.wait(), name=f"errand-wait-{proc.pid}")
        stopper = asyncio.create_task(stop.wait()) if stop is not None else None
        try:
            await self._watch(reader, waiter, stopper)
            # Main process exited, or we are killing it: nothing in its group outlives it.
            self.kill()
            returncode = await waiter
            await self.drain(reader)
        except BaseException:
            self.kill()
            for task in (reader, waiter, stopper):
                if task is not None:
                    task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(proc.wait()), DRAIN_GRACE_S)
            raise
        finally:
            if stopper is not None:
                stopper.cancel()
            if not reader.done():
                reader.cancel()
            self.pipe_transport.close()
        return returncode

    async def _watch(
        self,
        reader: asyncio.Task[None],
        waiter: asyncio.Task[int],
        stopper: asyncio.Task[Any] | None,
    ) -> None:
        """Wait until the main process exits, the wall-time cap is reached or ``stop`` is
        set; an exception from ``on_output`` (raised in the reader) propagates."""
        watched: set[asyncio.Future[Any]] = {waiter, reader}
        if stopper is not None:
            watched.add(stopper)
        deadline = self.started + self.limits.timeout_s
        while not waiter.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.timed_out = True
                self.killed_reason = "timeout"
                return
            done, _ = await asyncio.wait(
                watched, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if stopper is not None and stopper in done:
                self.killed_reason = self.killed_reason or "sandbox closed"
                return
            if reader in done:
                watched.discard(reader)
                reader.result()  # re-raise an exception from on_output

    async def drain(self, reader: asyncio.Task[None]) -> None:
        """Let the reader finish the pipe; abandon it after :data:`DRAIN_GRACE_S` (a
        process that left the group may hold it open)."""
        try:
            await asyncio.wait_for(asyncio.shield(reader), DRAIN_GRACE_S)
        except TimeoutError:
            log.warning("output pipe of pid %d still open after exit; abandoning it", self.pgid)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self.deliver(b"", final=True)

    def result(self, returncode: int) -> ExecResult:
        exit_code = TIMEOUT_EXIT_CODE if self.timed_out else exit_code_of(returncode)
        return ExecResult(
            exit_code=exit_code,
            output=self.capture.text(),
            duration_ms=int((time.monotonic() - self.started) * 1000),
            timed_out=self.timed_out,
            truncated=self.capture.truncated,
            killed_reason=self.killed_reason,
        )


class CommandRunner:
    """What the host-process backends share: running-command bookkeeping for ``close()``,
    per-command cgroups when available, and the memory-cap verdict."""

    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    async def execute(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        limits: Limits,
        on_output: OutputSink | None,
    ) -> ExecResult:
        if self._stop.is_set():
            raise RuntimeError("sandbox is closed")
        self._running += 1
        self._idle.clear()
        group = CommandCgroup.create(limits)
        try:
            result = await run_process(
                group.wrap(argv) if group is not None else argv,
                env=env,
                cwd=cwd,
                limits=limits,
                on_output=on_output,
                stop=self._stop,
                on_kill=group.kill if group is not None else None,
            )
            if group is not None and result.killed_reason is None and group.oom_killed():
                result = dataclasses.replace(result, killed_reason="memory cap")
            return result
        finally:
            if group is not None:
                await asyncio.shield(group.release())
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def close(self) -> None:
        self._stop.set()
        await self._idle.wait()
