"""The disk quota watcher on its own: work that stays under it, work that outgrows it,
and cancellation from outside."""

from __future__ import annotations

import asyncio

import pytest

from errand.hosts import quota as disk_quota
from errand.hosts.quota import DiskQuota, DiskQuotaExceeded, format_bytes, within_quota

asynchronous = pytest.mark.asyncio(loop_scope="function")


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk_quota, "INTERVAL_S", 0.01)


class Disk:
    def __init__(self, used: int) -> None:
        self.used = used

    async def measure(self) -> int:
        return self.used


@asynchronous
async def test_work_under_the_quota_returns_its_result() -> None:
    disk = Disk(1000)

    async def work() -> str:
        disk.used += 500
        await asyncio.sleep(0.05)
        return "done"

    quota = DiskQuota(limit=600, measure=disk.measure)
    assert await within_quota(work(), quota) == "done"
    assert quota.baseline == 1000 and quota.used == 500


@asynchronous
async def test_work_past_the_quota_is_cancelled_and_says_by_how_much() -> None:
    disk = Disk(0)
    cancelled = asyncio.Event()

    async def work() -> str:
        disk.used = 3 << 30
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    with pytest.raises(DiskQuotaExceeded) as caught:
        await asyncio.wait_for(within_quota(work(), DiskQuota(2 << 30, disk.measure)), 5)
    assert cancelled.is_set()
    assert caught.value.used == 3 << 30
    assert str(caught.value) == (
        "disk quota exceeded: the attempt wrote 3.0 GiB into its copy, "
        "over its 2.0 GiB cap (ERRAND_MAX_DISK_BYTES)"
    )


@asynchronous
async def test_errors_of_the_work_pass_through() -> None:
    async def work() -> str:
        raise ValueError("model error")

    with pytest.raises(ValueError, match="model error"):
        await within_quota(work(), DiskQuota(10, Disk(0).measure))


@asynchronous
async def test_cancelling_from_outside_cancels_the_work() -> None:
    cancelled = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    runner = asyncio.ensure_future(within_quota(work(), DiskQuota(10, Disk(0).measure)))
    await asyncio.sleep(0.05)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert cancelled.is_set()


def test_format_bytes() -> None:
    assert format_bytes(12) == "12 bytes"
    assert format_bytes(50 << 20) == "50.0 MiB"
    assert format_bytes(1536) == "1.5 KiB"
