"""Metronome: one timer for many token buckets, so a worker hosting many apps wakes once per tick.

A bucket paced at 20 msg/s admits one send every 50 ms on a timer of its own; fifty such apps
wake the event loop a thousand times a second, one send at a time, and each answer then arrives
alone too. That is what makes paced sending cost several times the CPU of unlimited sending.
`TickedLimiter` is an `AsyncLimiter` that, when it has no capacity, waits for the next tick of a
shared `Metronome` instead of its own timer: every app whose bucket refilled is admitted on the
same wake-up, their requests leave together and their answers are read together.

The bucket's accounting is aiolimiter's, unchanged: a tick only ever delays an admission, so
no sliding 1 s window holds more than `rate + burst` sends. A tick's delay (`period`, 10 ms by
default) is smaller than a bucket's refill (a tenth of a second's worth), so the rate holds.
"""

from __future__ import annotations

import asyncio

from aiolimiter import AsyncLimiter

#: Seconds between ticks: the longest a send waits beyond its bucket's own schedule.
DEFAULT_TICK = 0.01


class Metronome:
    """Ticks every `period` seconds while some bucket waits; one timer for all of them."""

    def __init__(self, period: float = DEFAULT_TICK) -> None:
        if not period > 0:
            raise ValueError(f"period must be > 0 seconds, got {period}")
        self.period = period
        self._next: asyncio.Event | None = None
        self.ticks = 0

    async def next_tick(self) -> None:
        """Wait for the next tick (the first waiter starts the timer)."""
        if self._next is None:
            self._next = asyncio.Event()
            asyncio.get_running_loop().call_later(self.period, self._fire)
        await self._next.wait()

    def _fire(self) -> None:
        event, self._next = self._next, None
        self.ticks += 1
        if event is not None:
            event.set()


class TickedLimiter(AsyncLimiter):
    """An `AsyncLimiter` (`max_rate` per `time_period`) whose waits end on a shared tick."""

    def __init__(self, max_rate: float, time_period: float, *, metronome: Metronome) -> None:
        super().__init__(max_rate, time_period)
        self.metronome = metronome

    async def acquire(self, amount: float = 1) -> None:
        """Take `amount` of capacity, waiting tick by tick until the bucket has it."""
        if not 0 <= amount <= self.max_rate:
            raise ValueError(f"amount must be between 0 and {self.max_rate}, got {amount}")
        while not self.has_capacity(amount):
            await self.metronome.next_tick()
        await super().acquire(amount)  # has the capacity: takes it without waiting
