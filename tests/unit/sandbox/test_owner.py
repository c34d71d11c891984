"""Owner labels (the Docker reaper's test of a container's server): a live server is
never taken for dead, in whatever PID namespace it runs; a dead one is, when that can be
shown. tests/test_sandbox_docker.py runs the reaper itself against an engine."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from errand.sandbox import owner

PRINT_LABEL = "from errand.sandbox import owner; print(owner.label(), flush=True)"


def label_of_a_process(*prefix: str, then: str = "") -> tuple[subprocess.Popen[str], str]:
    """Start a Python process (after ``prefix``) that prints its owner label, then runs
    ``then``; the process and its label."""
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-c", PRINT_LABEL + then], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()  # bounded by the test timeout


@pytest.fixture
def unshare() -> list[str]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for PID namespaces")
    return ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)


def wait_until_dead(label: str, timeout: float = 30) -> None:
    """The label's process has just been killed or is exiting: a moment later, it is
    known to be gone."""
    deadline = time.monotonic() + timeout
    while owner.alive(label):
        assert time.monotonic() < deadline, f"{label} still taken for alive"
        time.sleep(0.05)


def sees_every_process() -> bool:
    return owner._pid_ns("self") == owner.INIT_PID_NS and os.geteuid() == 0


def test_this_process_is_alive_and_an_exited_one_is_not() -> None:
    assert owner.alive(owner.label())
    proc, label = label_of_a_process()
    proc.wait(timeout=60)
    assert not owner.alive(label)


def test_a_server_in_another_pid_namespace(
    unshare: list[str], procs: list[subprocess.Popen[str]]
) -> None:
    proc, label = label_of_a_process(*unshare, then="; import time; time.sleep(120)")
    procs.append(proc)
    host, boot, ns, pid, _ = label.split("/")
    assert (host, boot) == (socket.gethostname(), owner._boot_id())
    assert int(ns) != owner._pid_ns("self") and pid == "1"  # a PID that means another here
    assert owner.alive(label)
    proc.kill()  # and with it the whole namespace
    proc.wait(timeout=30)
    if not sees_every_process():
        return  # a namespace with no process left is gone only to a server that sees all
    wait_until_dead(label)


def test_a_dead_server_in_a_pid_namespace_that_lives_on(
    unshare: list[str], procs: list[subprocess.Popen[str]]
) -> None:
    shell = ["sh", "-c", '"$@"; exec sleep 120', "sh"]
    proc, label = label_of_a_process(*unshare, *shell)
    procs.append(proc)
    assert label.split("/")[3] == "2"  # the server was PID 2, under the namespace's shell
    wait_until_dead(label)  # the namespace runs on; the server's PID is no longer in it


@pytest.mark.parametrize(
    ("label", "alive"),
    [
        (f"{socket.gethostname()}/999999/1", True),  # an older label: can't be placed
        ("not a label", True),
        (f"{socket.gethostname()}/another-boot/4026531836/1/1", False),  # rebooted since
        ("another-host/another-boot/4026531836/1/1", True),  # another machine's
        (f"{socket.gethostname()}/{{boot}}/4026531836/x/1", True),
    ],
)
def test_labels_judged_without_looking_for_the_process(label: str, alive: bool) -> None:
    assert owner.alive(label.replace("{boot}", owner._boot_id())) is alive
