"""Fixtures for the escape suite (see probes.py for how each probe is run).

Backends: ``bwrap`` and ``docker``. A backend that is not available here is skipped,
except under ``CI=true``, where it must be available and the test fails instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from support.docker_image import engine_or_skip, ensure_test_image
from support.probes import HelloHandler, Listeners, Places, dns_reply, unavailable


@pytest.fixture(scope="session")
def docker_image() -> Iterator[str]:
    client = engine_or_skip()
    tag = ensure_test_image(client)
    old = os.environ.get("ERRAND_DOCKER_IMAGE")
    os.environ["ERRAND_DOCKER_IMAGE"] = tag
    yield tag
    if old is None:
        os.environ.pop("ERRAND_DOCKER_IMAGE", None)
    else:
        os.environ["ERRAND_DOCKER_IMAGE"] = old


@pytest.fixture(params=["bwrap", "docker"])
def backend(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "bwrap" and shutil.which("bwrap") is None:
        unavailable("bubblewrap is not installed")
    if kind == "docker":
        request.getfixturevalue("docker_image")
    return kind


@pytest.fixture
def places() -> Iterator[Places]:
    base = Path(tempfile.mkdtemp(prefix="errand-escape-", dir="/var/tmp")).resolve()
    os.chmod(base, 0o755)
    try:
        yield Places(base)
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def listeners() -> Iterator[Listeners]:
    """TCP, UDP, HTTP and DNS listeners on every host address (0.0.0.0)."""
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", 0))
    tcp.listen(64)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 0))
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("0.0.0.0", 0))
    http = ThreadingHTTPServer(("0.0.0.0", 0), HelloHandler)
    received: list[bytes] = []
    stop = threading.Event()

    def accept_loop() -> None:
        tcp.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = tcp.accept()
                conn.close()
            except OSError:
                continue

    def udp_loop() -> None:
        udp.settimeout(0.2)
        while not stop.is_set():
            try:
                received.append(udp.recv(512))
            except OSError:
                continue

    def dns_loop() -> None:
        dns.settimeout(0.2)
        while not stop.is_set():
            try:
                query, peer = dns.recvfrom(512)
                dns.sendto(dns_reply(query), peer)
            except OSError:
                continue

    threads = [threading.Thread(target=f, daemon=True) for f in (accept_loop, udp_loop, dns_loop)]
    threads.append(threading.Thread(target=http.serve_forever, daemon=True))
    for t in threads:
        t.start()
    try:
        yield Listeners(
            tcp.getsockname()[1],
            udp.getsockname()[1],
            int(http.server_address[1]),
            dns.getsockname()[1],
            received,
        )
    finally:
        stop.set()
        http.shutdown()
        for t in threads:
            t.join(timeout=5)
        for s in (tcp, udp, dns):
            s.close()
        http.server_close()
