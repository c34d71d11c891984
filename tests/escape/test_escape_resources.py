"""Resource probes: runaway commands hit their caps, and the server (this process) and the
host come through unharmed, with bounded memory."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from errand.sandbox import Limits
from errand.sandbox.process import CUT_MARKER, OUTPUT_KILL_FACTOR, TIMEOUT_EXIT_CODE
from support.probes import PYTHON, Places, inside, outside, rss_kib, sandbox_processes
from support.processes import processes_gone

CAP = 64
SMALL = Limits(
    timeout_s=60,
    max_output_bytes=64 * 1024,
    max_processes=CAP,
    max_memory_bytes=256 << 20,
    max_file_bytes=32 << 20,
)


@contextmanager
def sampling(measure: Callable[[], int]) -> Iterator[list[int]]:
    """Sample ``measure()`` every 20 ms while the block runs; yields the samples."""
    samples = [measure()]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            samples.append(measure())
            time.sleep(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def pids_with(token: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if token.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(entry)
            except OSError:
                continue
    return found


def still_works(backend: str, places: Places) -> None:
    """After the abuse, the host forks, and a new sandbox runs a command."""
    assert outside("echo host-alive").stdout == "host-alive\n"
    result = inside(backend, places, "echo sandbox-alive")
    assert (result.exit_code, result.output) == (0, "sandbox-alive\n")


FORKER = (
    PYTHON + ' -c "import os, time\n'
    "n = 0\n"
    "for _ in range(200):\n"
    "    try:\n"
    "        if os.fork() == 0:\n"
    "            time.sleep(3); os._exit(0)\n"
    "        n += 1\n"
    "    except OSError:\n"
    "        break\n"
    "print('FORKED', n)\""
)


def test_process_cap(backend: str, places: Places) -> None:
    assert "FORKED 200" in outside(FORKER).stdout
    result = inside(backend, places, FORKER, limits=SMALL)
    forked = int(result.output.split("FORKED")[1].split()[0])
    assert 0 < forked < CAP, result.output
    still_works(backend, places)


def test_fork_bomb_is_capped(backend: str, places: Places) -> None:
    # Not run outside, for the host's sake: test_process_cap shows the probe's mechanism.
    limits = Limits(
        timeout_s=8, max_output_bytes=1 << 20, max_processes=CAP, max_memory_bytes=512 << 20
    )
    baseline = sandbox_processes()
    with sampling(sandbox_processes) as counts:
        result = inside(backend, places, ":(){ :|:& };:; sleep 30", limits=limits)
    assert result.exit_code != 0 and result.killed_reason in ("timeout", "output cap")
    # The sandbox's processes, plus a few on the host side (bwrap, the docker CLI).
    assert max(counts) - baseline <= CAP + 8, (baseline, max(counts))
    assert max(counts) - baseline >= CAP // 2, "the bomb must have reached the cap"
    deadline = time.monotonic() + 30
    while sandbox_processes() > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes() <= baseline, "everything the bomb started is gone"
    still_works(backend, places)


def test_gigabyte_of_output_is_capped_and_memory_stays_bounded(
    backend: str, places: Places
) -> None:
    probe = "head -c 1G /dev/zero | tr '\\0' x"
    assert outside(probe + " | wc -c").stdout.strip() == str(1 << 30)
    streamed = [0]

    def count(text: str) -> None:
        streamed[0] += len(text.encode())

    with sampling(rss_kib) as rss:
        result = inside(backend, places, probe, limits=SMALL, on_output=count)
    assert (result.exit_code, result.killed_reason, result.truncated) == (137, "output cap", True)
    assert CUT_MARKER.split("{")[0] in result.output
    assert len(result.output.encode()) <= SMALL.max_output_bytes + 100
    assert streamed[0] <= OUTPUT_KILL_FACTOR * SMALL.max_output_bytes
    assert max(rss) - rss[0] < 64 * 1024, f"RSS grew by {max(rss) - rss[0]} KiB"
    still_works(backend, places)


def test_endless_loop_is_killed_at_its_timeout(backend: str, places: Places) -> None:
    token = f"errand-loop-{uuid.uuid4().hex[:8]}"
    probe = f"exec -a {token} bash -c 'while :; do :; done'"
    assert outside(f'timeout 1 bash -c "{probe}"; echo $?').stdout.strip() == "124"
    limits = Limits(timeout_s=3)
    result = inside(backend, places, probe, limits=limits)
    assert (result.exit_code, result.timed_out, result.killed_reason) == (
        TIMEOUT_EXIT_CODE,
        True,
        "timeout",
    )
    assert processes_gone(pids_with, token)
    still_works(backend, places)


HOG = (
    PYTHON + ' -c "import sys\n'
    "chunks = []\n"
    "for i in range(1, 61):\n"
    "    chunks.append(b'x' * (10 << 20))\n"
    "    print('MB', i * 10, flush=True)\n"
    "print('DONE')\""
)


def test_memory_hog_is_stopped(backend: str, places: Places) -> None:
    assert "DONE" in outside(HOG).stdout  # 600 MB is fine on the host
    result = inside(backend, places, HOG, limits=SMALL)
    assert result.exit_code != 0 and "DONE" not in result.output
    reached = [int(line.split()[1]) for line in result.output.splitlines() if line[:3] == "MB "]
    assert max(reached, default=0) <= 256, result.output[-500:]
    still_works(backend, places)


def test_file_size_is_capped(backend: str, places: Places) -> None:
    host_file = places.base / "host-big"
    assert outside(f"head -c 100M /dev/zero > {host_file} && echo WROTE").stdout == "WROTE\n"
    assert host_file.stat().st_size == 100 << 20
    result = inside(backend, places, "head -c 100M /dev/zero > big && echo WROTE", limits=SMALL)
    assert result.exit_code != 0 and "WROTE" not in result.output
    assert (places.copy / "big").stat().st_size <= SMALL.max_file_bytes
    still_works(backend, places)
