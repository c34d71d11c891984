"""A cap on what one attempt writes into its copy.

The per-file cap (RLIMIT_FSIZE) stops one huge file, not many large ones. This watches
the copy's own disk use while the attempt works and ends the work when it grows past
the quota. It is sampled, not enforced by the filesystem: a command can overshoot by
what it writes within one interval (a second, or longer on a copy slow to measure),
on top of which the per-file cap still holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

INTERVAL_S = 1.0
MEASURE_SHARE = 0.05
"""At most this share of the time goes to measuring: a copy that takes 100 ms to
measure is measured every 2 s."""


class DiskQuotaExceeded(Exception):
    def __init__(self, used: int, limit: int) -> None:
        super().__init__(
            f"disk quota exceeded: the attempt wrote {format_bytes(used)} into its copy, "
            f"over its {format_bytes(limit)} cap (ERRAND_MAX_DISK_BYTES)"
        )
        self.used = used
        self.limit = limit


@dataclass(slots=True)
class DiskQuota:
    limit: int
    """Bytes the attempt may add to its copy."""
    measure: Callable[[], Awaitable[int]]
    """The copy's own disk use now (off the event loop)."""
    baseline: int | None = None
    used: int = 0
    """Bytes added since the baseline, at the last measurement."""

    async def check(self) -> float:
        """Measure once; return how long measuring took. Raises
        :class:`DiskQuotaExceeded` past the limit."""
        started = time.monotonic()
        total = await self.measure()
        if self.baseline is None:
            self.baseline = total
        self.used = max(0, total - self.baseline)
        if self.used > self.limit:
            raise DiskQuotaExceeded(self.used, self.limit)
        return time.monotonic() - started

    async def watch(self) -> None:
        """Measure until cancelled or until the quota is exceeded."""
        took = 0.0
        while True:
            await asyncio.sleep(max(INTERVAL_S, took / MEASURE_SHARE))
            try:
                took = await self.check()
            except OSError as exc:  # the copy is being released: try again later
                log.debug("could not measure the copy: %s", exc)


async def within_quota(work: Awaitable[T], quota: DiskQuota) -> T:
    """Await ``work`` while ``quota`` is watched; past the quota, cancel the work (its
    sandboxed processes die with it) and raise :class:`DiskQuotaExceeded`."""
    await quota.check()  # the baseline, before anything runs
    worker = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(quota.watch())
    try:
        await asyncio.wait({worker, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Whichever is still going: the watcher after the work ended, the work when the
        # quota was exceeded, both when this was cancelled from outside.
        worker.cancel()
        watcher.cancel()
        await asyncio.gather(worker, watcher, return_exceptions=True)
    if watcher.done() and not watcher.cancelled():
        watcher.result()  # raises DiskQuotaExceeded
    return worker.result()


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover
