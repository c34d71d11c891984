"""Helpers of the escape suite: where probes aim, and how they run outside and inside.

A probe that fails outside proves nothing when it fails inside, so every test first runs
the very same command on the host (:func:`outside`) and checks that it succeeds there,
and only then runs it in the sandbox (:func:`inside`) and checks that it fails.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from errand.sandbox import ExecResult, Limits, SandboxSpec, open_sandbox

IN_CI = os.environ.get("CI") == "true"
PYTHON = "/usr/bin/python3"
"""The probes' interpreter: the system one, which the test image carries too."""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def unavailable(message: str) -> None:
    """Skip, or fail under CI=true where every backend must be available."""
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


@dataclass
class Places:
    """The user's repository (with a real .git) and a task copy that borrows its objects
    (``git clone --shared``, as errand's copies do through the mirror). Outside /tmp, so
    that bubblewrap hiding the host's /tmp cannot make a probe pass vacuously."""

    base: Path
    repo: Path = field(init=False)
    copy: Path = field(init=False)

    def __post_init__(self) -> None:
        self.repo = self.base / "repo"
        self.copy = self.base / "copy"
        env = {**os.environ, **GIT_ENV}
        subprocess.run(["git", "init", "-q", str(self.repo)], check=True)
        (self.repo / "tracked.txt").write_text("user data\n")
        subprocess.run(["git", "-C", str(self.repo), "add", "."], check=True, env=env)
        subprocess.run(["git", "-C", str(self.repo), "commit", "-qm", "one"], check=True, env=env)
        subprocess.run(
            ["git", "clone", "-q", "--shared", str(self.repo), str(self.copy)], check=True
        )

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the user's repository (including .git), for before/after checks."""
        files = {}
        for path in sorted(self.repo.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files[str(path.relative_to(self.repo))] = path.read_bytes()
        return files


def outside(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a probe on the host, as the server's user, with the server's environment."""
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def inside(
    backend: str,
    places: Places,
    command: str,
    *,
    limits: Limits | None = None,
    on_output: Any = None,
    **spec: Any,
) -> ExecResult:
    """Open a sandbox of ``backend`` on the task copy, run one command, close it."""

    async def go() -> ExecResult:
        sb = await open_sandbox(
            backend,
            SandboxSpec(root=places.copy, limits=limits or Limits(timeout_s=60), **spec),
        )
        try:
            return await sb.run(command, on_output=on_output)
        finally:
            await sb.close()

    return asyncio.run(go())


def host_addresses() -> list[str]:
    """127.0.0.1 plus this machine's primary non-loopback IPv4 address, if any."""
    addresses = ["127.0.0.1"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent for a UDP connect
            ip = s.getsockname()[0]
            if not ip.startswith("127."):
                addresses.append(ip)
        except OSError:
            pass
    return addresses


@dataclass
class Listeners:
    tcp_port: int
    udp_port: int
    http_port: int
    dns_port: int
    udp_received: list[bytes]


DNS_NAME = "errand-probe.test"
DNS_ANSWER = "10.9.8.7"


def dns_reply(query: bytes) -> bytes:
    """A one-answer reply (A record DNS_ANSWER) to any standard query."""
    header = query[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
    question = query[12:]
    answer = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(DNS_ANSWER)
    return header + question + answer


class HelloHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"HELLO-FROM-HOST\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def rss_kib() -> int:
    """This process's resident set size, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def sandbox_processes() -> int:
    """Processes that belong to this test's sandboxes: descendants of this process (the
    bwrap and none backends, the docker CLI) plus processes inside Docker containers.
    Counting only these keeps the measure free of other work on a shared machine."""
    parents: dict[int, int] = {}
    in_container = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            if "/docker/" in Path(f"/proc/{entry}/cgroup").read_text():
                in_container += 1
        except (OSError, ValueError, IndexError):
            continue
    me = os.getpid()
    descendants = 0
    for pid in parents:
        seen = 0
        while pid in parents and seen < 64:
            pid = parents[pid]
            seen += 1
            if pid == me:
                descendants += 1
                break
    return descendants + in_container
