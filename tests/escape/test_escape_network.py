"""Network probes: each reaches a listener this test runs on the host — from the host,
and then not from inside any sandbox."""

from __future__ import annotations

import shutil
import socket
import uuid
from pathlib import Path

import pytest

from support.probes import (
    DNS_ANSWER,
    DNS_NAME,
    IN_CI,
    PYTHON,
    Listeners,
    Places,
    host_addresses,
    inside,
    outside,
)

TCP_PROBE = (
    PYTHON + " -c \"import socket; socket.create_connection(('{host}', {port}), 3); "
    "print('CONNECTED')\""
)
DEV_TCP_PROBE = "exec 3<>/dev/tcp/{host}/{port} && echo CONNECTED"
UDP_PROBE = (
    PYTHON + ' -c "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); '
    "s.sendto(b'{token}', ('{host}', {port})); print('SENT')\""
)
DNS_PROBE = (
    PYTHON + ' -c "import socket, struct\n'
    "q = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0)\n"
    "q += b''.join(bytes([len(p)]) + p.encode() for p in '{name}'.split('.')) + b'\\0'\n"
    "q += struct.pack('>HH', 1, 1)\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)\n"
    "s.sendto(q, ('{host}', {port})); r = s.recv(512)\n"
    "print('RESOLVED', socket.inet_ntoa(r[-4:]))\""
)
# Every distinct address of each name, once: glibc lists 127.0.0.1 twice for localhost
# when /etc/hosts also has "::1 localhost" (Debian's default), even for AF_INET.
NAME_PROBE = (
    PYTHON + ' -c "import socket\n'
    "for name in ('localhost', socket.gethostname()):\n"
    "    found = socket.getaddrinfo(name, {port}, socket.AF_INET, socket.SOCK_STREAM)\n"
    "    for addr in dict.fromkeys(a[-1] for a in found):\n"
    "        socket.create_connection(addr, 3).close(); print('CONNECTED', name, addr[0])\""
)


@pytest.mark.parametrize("host", host_addresses())
def test_tcp_connect(backend: str, places: Places, listeners: Listeners, host: str) -> None:
    probe = TCP_PROBE.format(host=host, port=listeners.tcp_port)
    assert "CONNECTED" in outside(probe).stdout
    result = inside(backend, places, probe)
    assert result.exit_code != 0 and "CONNECTED" not in result.output, result.output


@pytest.mark.parametrize("host", host_addresses())
def test_bash_dev_tcp(backend: str, places: Places, listeners: Listeners, host: str) -> None:
    probe = DEV_TCP_PROBE.format(host=host, port=listeners.tcp_port)
    assert "CONNECTED" in outside(probe).stdout
    result = inside(backend, places, probe)
    assert result.exit_code != 0 and "CONNECTED" not in result.output, result.output


@pytest.mark.parametrize("host", host_addresses())
def test_python_udp_datagram(backend: str, places: Places, listeners: Listeners, host: str) -> None:
    probe_out = UDP_PROBE.format(host=host, port=listeners.udp_port, token="from-outside")
    assert "SENT" in outside(probe_out).stdout
    _wait_for(lambda: b"from-outside" in listeners.udp_received)
    probe_in = UDP_PROBE.format(host=host, port=listeners.udp_port, token="from-inside")
    inside(backend, places, probe_in + "; sleep 0.5")
    # A datagram may be "sent" into the sandbox's own empty network; it must not arrive.
    assert b"from-inside" not in listeners.udp_received


@pytest.mark.parametrize("host", host_addresses())
def test_dns_lookup(backend: str, places: Places, listeners: Listeners, host: str) -> None:
    probe = DNS_PROBE.format(name=DNS_NAME, host=host, port=listeners.dns_port)
    assert f"RESOLVED {DNS_ANSWER}" in outside(probe).stdout
    result = inside(backend, places, probe)
    assert result.exit_code != 0 and "RESOLVED" not in result.output, result.output


def test_names_resolve_only_to_the_sandbox_itself(
    backend: str, places: Places, listeners: Listeners
) -> None:
    # getaddrinfo of localhost and of this host's name (from /etc/hosts), then connect.
    probe = NAME_PROBE.format(port=listeners.tcp_port)
    connected = [line.split()[1:] for line in outside(probe).stdout.splitlines()]
    assert {name for name, _ in connected} == {"localhost", socket.gethostname()}, connected
    assert ["localhost", "127.0.0.1"] in connected
    result = inside(backend, places, probe)
    assert result.exit_code != 0 and "CONNECTED" not in result.output, result.output


@pytest.mark.parametrize("tool", ["curl", "wget"])
def test_http_clients(backend: str, places: Places, listeners: Listeners, tool: str) -> None:
    if shutil.which(tool) is None:
        if IN_CI:
            pytest.fail(f"CI=true: {tool} must be installed so this probe is not vacuous")
        pytest.skip(f"{tool} is not installed")
    url = f"http://127.0.0.1:{listeners.http_port}/"
    probe = f"curl -sS -m 5 {url}" if tool == "curl" else f"wget -q -T 5 -t 1 -O - {url}"
    assert "HELLO-FROM-HOST" in outside(probe).stdout
    result = inside(backend, places, f"command -v {tool} && {probe}")
    assert tool in result.output.splitlines()[0], "the probe's tool must exist inside too"
    assert result.exit_code != 0 and "HELLO-FROM-HOST" not in result.output, result.output


def test_network_opt_in_reaches_the_host(places: Places, listeners: Listeners) -> None:
    """Control for bwrap: with spec.network the same probe connects, so the sandbox's
    failures above come from the missing network, not from a broken probe."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    probe = TCP_PROBE.format(host="127.0.0.1", port=listeners.tcp_port)
    result = inside("bwrap", places, probe, network=True)
    assert result.exit_code == 0 and "CONNECTED" in result.output, result.output


def _wait_for(predicate: object, timeout_s: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError("the outside probe's datagram never arrived")


UNIX_PROBE = (
    PYTHON + ' -c "import socket; s = socket.socket(socket.AF_UNIX); s.settimeout(3); '
    "s.connect('{path}'); print('CONNECTED')\""
)


def test_unix_sockets_of_host_daemons(backend: str, places: Places) -> None:
    """/run holds the sockets of docker, containerd, D-Bus and the user's session; a Unix
    socket accepts connections even on a read-only mount, so /run must be out of reach."""
    path = Path("/run") / f"errand-probe-{uuid.uuid4().hex[:8]}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(8)
    try:
        probe = UNIX_PROBE.format(path=path)
        assert "CONNECTED" in outside(probe).stdout
        result = inside(backend, places, probe)
        assert result.exit_code != 0 and "CONNECTED" not in result.output, result.output
    finally:
        server.close()
        path.unlink()


def test_docker_engine_socket(backend: str, places: Places) -> None:
    sock = Path("/var/run/docker.sock")
    probe = f"curl -sS -m 5 --unix-socket {sock} http://engine/_ping"
    if not sock.exists() or shutil.which("curl") is None:
        if IN_CI:
            pytest.fail("CI=true: the Docker engine socket and curl must exist for this probe")
        pytest.skip("no local Docker engine socket or no curl")
    assert outside(probe).stdout == "OK"
    result = inside(backend, places, probe)
    assert result.exit_code != 0 and "OK" not in result.output, result.output
