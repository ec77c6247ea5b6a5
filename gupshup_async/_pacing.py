"""Pacer: admits a sender's sends through the token bucket, and slows down on throttling.

One pacer per `BulkSender` holds the account's rate: concurrent runs on the sender share its
bucket, its rate factor and its `Retry-After` pause, so their sum stays within `rate + burst`.

Admission is batched: one pacer task takes tokens for up to `chunk` waiting workers at a time
(about 10 ms worth) and wakes them together, so a run at 1 000 msg/s wakes the loop 100 times a
second instead of 1 000 (measured: half the client CPU per message). It only ever takes tokens
for workers already waiting, so no sliding 1 s window holds more than `rate + burst` sends.

Rate-dependent throttling (429 and codes 4, 80007, 130429; see `RetryPolicy.decide`) slows every
worker: its `Retry-After` (already capped by the policy) pauses admission, and repeated throttling
(a second throttled answer within a second of the last) halves the effective rate, at most once a
second; it then recovers by a quarter of the set rate per quiet second (AIMD). A lone 429 only
pauses or backs off. Cuts are logged at debug level: a progress line shows them
(`BulkSender.current_rate`, `rate_cuts`, `throttled`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable

from aiolimiter import AsyncLimiter

logger = logging.getLogger("gupshup_async.bulk")

#: The effective rate never drops below this fraction of the set rate when throttled.
MIN_RATE_FACTOR = 1 / 16
#: After a cut, the factor regains this much of the set rate per second without throttling.
RECOVERY_PER_SECOND = 0.25
#: Two throttled answers closer than this (seconds) count as repeated throttling.
REPEAT_WINDOW = 1.0
#: Admission batches hold about this many seconds' worth of tokens.
BATCH_SECONDS = 0.01


class Pacer:
    """A sender's shared admission: pause deadline, rate factor, and batched bucket tokens."""

    def __init__(
        self, limiter: AsyncLimiter | None, clock: Callable[[], float], *, rate: float | None
    ) -> None:
        self.limiter = limiter
        self.clock = clock
        self.chunk = 1
        if limiter is not None and rate is not None:
            self.chunk = max(1, min(int(limiter.max_rate), round(rate * BATCH_SECONDS)))
        self.paused_until = 0.0
        self.factor = 1.0
        self.last_cut = -math.inf
        self.last_throttled = -math.inf
        self.cuts = 0
        self.lowest_factor = 1.0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._task: asyncio.Task[None] | None = None

    def current_factor(self) -> float:
        """The fraction of the set rate allowed now, recovering with quiet time."""
        if self.factor < 1.0:
            quiet = self.clock() - self.last_cut
            return min(1.0, self.factor + max(quiet - 1.0, 0.0) * RECOVERY_PER_SECOND)
        return 1.0

    def open(self) -> bool:
        """Whether a send may go at once, without `admit()`: unlimited and not paused.

        The unlimited hot path asks this instead of awaiting a coroutine per message.
        """
        return self.limiter is None and self.paused_until <= self.clock()

    async def admit(self) -> None:
        """Wait for this worker's turn: past any pause and through the bucket."""
        if self.limiter is None:
            await self._wait_out_pause()
            return
        admitted = asyncio.get_running_loop().create_future()
        self._waiting.append(admitted)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._pace())
        await admitted

    async def _wait_out_pause(self) -> None:
        # The deadline may move later while we sleep (another Retry-After): look again.
        while (wait := self.paused_until - self.clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    async def _pace(self) -> None:
        try:
            await self._admit_waiting()
        except BaseException as exc:  # never leave a worker waiting on a pacer that died
            failure = exc if isinstance(exc, Exception) else RuntimeError("the pacer was stopped")
            while self._waiting:
                waiter = self._waiting.popleft()
                if not waiter.done():
                    waiter.set_exception(failure)
            if not isinstance(exc, Exception):
                raise

    async def _admit_waiting(self) -> None:
        limiter = self.limiter
        assert limiter is not None
        while self._waiting:
            await self._wait_out_pause()
            live = sum(1 for waiter in self._waiting if not waiter.done())
            if not live:
                self._waiting.clear()
                return
            cost = min(1.0 / self.current_factor(), limiter.max_rate)
            batch = max(1, min(live, self.chunk, int(limiter.max_rate // cost)))
            await limiter.acquire(min(batch * cost, limiter.max_rate))
            while batch and self._waiting:
                waiter = self._waiting.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    batch -= 1

    def close(self) -> None:
        """Stop pacing: the sender's last run is over, so nobody waits any more."""
        if self._task is not None:
            self._task.cancel()

    def throttled(self, pause: float | None) -> None:
        """Note rate-dependent throttling: pause every worker `pause` s, halve the rate on repeats.

        `pause` is the answer's `Retry-After` as capped by the retry policy, or None.
        """
        now = self.clock()
        if pause is not None and pause > 0:
            self.paused_until = max(self.paused_until, now + pause)
        repeated = now - self.last_throttled < REPEAT_WINDOW
        self.last_throttled = now
        if repeated and now - self.last_cut >= REPEAT_WINDOW:
            self.factor = max(self.current_factor() / 2, MIN_RATE_FACTOR)
            self.last_cut = now
            self.cuts += 1
            self.lowest_factor = min(self.lowest_factor, self.factor)
            logger.debug(
                "throttled by the API: sending at %.0f%% of the set rate", 100 * self.factor
            )
