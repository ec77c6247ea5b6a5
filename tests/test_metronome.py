"""TickedLimiter: many buckets wait on one shared tick, and each keeps its rate + burst bound."""

from __future__ import annotations

import asyncio

import pytest

from gupshup_async._metronome import Metronome, TickedLimiter

RATE = 20.0
BURST = 2


def _largest_window(times: list[float], window: float = 1.0) -> int:
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_many_buckets_are_woken_by_one_tick_and_each_holds_its_rate() -> None:
    metronome = Metronome(0.01)
    loop = asyncio.get_running_loop()
    admitted: dict[int, list[float]] = {}

    async def app(k: int) -> None:
        bucket = TickedLimiter(BURST, BURST / RATE, metronome=metronome)
        await bucket.acquire(BURST)  # start full: no burst at the start
        for _ in range(25):
            await bucket.acquire()
            admitted.setdefault(k, []).append(loop.time())

    started = loop.time()
    await asyncio.gather(*(app(k) for k in range(30)))
    elapsed = loop.time() - started
    sends = sum(len(times) for times in admitted.values())
    assert sends == 750
    # One timer for all 30 buckets: far fewer wake-ups than admissions.
    assert 0 < metronome.ticks <= elapsed / 0.01 + 1
    assert metronome.ticks < sends / 4
    for times in admitted.values():
        assert _largest_window(times) <= RATE + BURST
    # The rate holds: 25 sends at 20/s from a full bucket take about 1.25 s, ticks or not.
    assert 1.1 < elapsed < 2.5


async def test_a_bucket_with_capacity_does_not_wait_for_a_tick() -> None:
    metronome = Metronome(10.0)  # a tick would take 10 s
    bucket = TickedLimiter(BURST, BURST / RATE, metronome=metronome)
    await asyncio.wait_for(bucket.acquire(BURST), timeout=1.0)
    assert metronome.ticks == 0


async def test_amount_beyond_the_bucket_is_refused() -> None:
    bucket = TickedLimiter(BURST, BURST / RATE, metronome=Metronome())
    with pytest.raises(ValueError, match="between 0 and 2"):
        await bucket.acquire(3)


def test_a_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="period must be > 0"):
        Metronome(0)
