"""BulkSender: one message (or one per recipient) to many recipients at the account's rate.

A fixed pool of `concurrency` workers pulls from the recipients as they are iterated (never one
task per recipient); every attempt first passes the shared token bucket, so no sliding 1-second
window holds more than `rate + burst` sends. Throttling slows the whole sender: `Retry-After`
pauses every worker, and repeated throttling (a second throttled answer within a second of the
last) halves the effective rate, at most once a second; it then recovers by a quarter of the
set rate per quiet second (AIMD). A lone 429 only pauses or backs off.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypedDict

import anyio
from aiolimiter import AsyncLimiter

from ._client import AsyncGupshupClient, encode_body, encode_message
from ._errors import GupshupError, RateLimitError
from ._messages import Message
from ._recipients import mask_recipient, normalize_recipient

logger = logging.getLogger("gupshup_async.bulk")

DEFAULT_RATE = 80.0
DEFAULT_CONCURRENCY = 64
#: The effective rate never drops below this fraction of the set rate when throttled.
MIN_RATE_FACTOR = 1 / 16
#: After a cut, the factor regains this much of the set rate per second without throttling.
RECOVERY_PER_SECOND = 0.25
#: Two throttled answers closer than this (seconds) count as repeated throttling.
REPEAT_WINDOW = 1.0


class BulkSuccess(TypedDict):
    """A recipient whose message the API accepted; `result` is the API's JSON answer."""

    recipient: str
    success: Literal[True]
    result: dict[str, Any]


class BulkFailure(TypedDict):
    """A recipient that did not get the message (or may have: the error says so)."""

    recipient: str
    success: Literal[False]
    error: str


BulkResult: TypeAlias = BulkSuccess | BulkFailure

#: What became of one recipient, beyond the reference's result shape.
Status = Literal["sent", "failed", "ambiguous", "invalid", "duplicate", "not_sent"]

Recipients: TypeAlias = Iterable[str] | AsyncIterable[str]
MessageSource: TypeAlias = Message | Callable[[str], Message]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One recipient's final result with the details a journal or summary needs.

    `status` is "sent", "failed" (surely not delivered), "ambiguous" (may have been delivered),
    "invalid" (bad number or message), "duplicate" (repeated in this run, not sent) or
    "not_sent" (cancelled before a retry; surely not delivered). `latency` is seconds from the
    first attempt to the final answer; `index` the position in the input.
    """

    index: int
    recipient: str
    digits: str | None
    status: Status
    result: BulkResult
    error: BaseException | None = None
    attempts: int = 0
    latency: float = 0.0

    @property
    def code(self) -> int | None:
        """The provider's error code, when the API gave one."""
        return getattr(self.error, "code", None)


class _Throttle:
    """Shared slow-down state: a pause deadline and a rate factor, read before every attempt."""

    def __init__(self, limiter: AsyncLimiter | None, clock: Callable[[], float]) -> None:
        self.limiter = limiter
        self.clock = clock
        self.paused_until = 0.0
        self.factor = 1.0
        self.last_cut = -math.inf
        self.last_throttled = -math.inf
        self.cuts = 0
        self.lowest_factor = 1.0

    def current_factor(self) -> float:
        if self.factor < 1.0:
            quiet = self.clock() - self.last_cut
            return min(1.0, self.factor + max(quiet - 1.0, 0.0) * RECOVERY_PER_SECOND)
        return 1.0

    async def admit(self) -> None:
        # The deadline may move later while we sleep (another Retry-After): look again.
        while (wait := self.paused_until - self.clock()) > 0:  # noqa: ASYNC110
            await anyio.sleep(wait)
        if self.limiter is not None:
            cost = min(1.0 / self.current_factor(), self.limiter.max_rate)
            await self.limiter.acquire(cost)

    def throttled(self, retry_after: float | None) -> None:
        now = self.clock()
        if retry_after is not None and retry_after > 0:
            self.paused_until = max(self.paused_until, now + retry_after)
        repeated = now - self.last_throttled < REPEAT_WINDOW
        self.last_throttled = now
        if repeated and now - self.last_cut >= REPEAT_WINDOW:
            self.factor = max(self.current_factor() / 2, MIN_RATE_FACTOR)
            self.last_cut = now
            self.cuts += 1
            self.lowest_factor = min(self.lowest_factor, self.factor)
            logger.warning(
                "throttled by the API: sending at %.0f%% of the set rate", 100 * self.factor
            )


class BulkSender:
    """Fans messages out through a token bucket with bounded concurrency.

    `rate` is in messages per second (None: unlimited); `burst` is the bucket size (default a
    tenth of a second's worth, at least 1); `concurrency` bounds the requests in flight.
    Pass `limiter` to share one account's bucket between senders and single sends.
    `on_result` is called with each `Outcome` as it completes (progress bars, journals);
    `before_send(digits)` is awaited once per recipient, after its first bucket token and
    before its first request (a journal's write-ahead mark). `deduplicate=False` skips the
    in-memory check for repeated numbers, for callers that deduplicate already (the journal).
    """

    def __init__(
        self,
        client: AsyncGupshupClient,
        *,
        rate: float | None = DEFAULT_RATE,
        burst: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        limiter: AsyncLimiter | None = None,
        on_result: Callable[[Outcome], None] | None = None,
        before_send: Callable[[str], Awaitable[None]] | None = None,
        deduplicate: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of messages per second, got {rate}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.client = client
        self.rate = rate
        self.burst = burst if burst is not None else max(1, round((rate or 0) / 10))
        self.concurrency = concurrency
        self.on_result = on_result
        self.before_send = before_send
        self.deduplicate = deduplicate
        self._limiter = limiter
        self._clock = clock
        self._throttle: _Throttle | None = None

    @property
    def rate_cuts(self) -> int:
        """How many times throttling made the last run halve its rate."""
        return self._throttle.cuts if self._throttle else 0

    @property
    def lowest_rate(self) -> float | None:
        """The lowest effective rate (msg/s) the last run fell to, or None if unlimited."""
        if self._throttle is None or self.rate is None:
            return None
        return self.rate * self._throttle.lowest_factor

    async def send(self, recipients: Recipients, message: MessageSource) -> list[BulkResult]:
        """Send to every recipient; one result per input entry, in input order."""
        collected: list[tuple[int, BulkResult]] = []

        def keep(outcome: Outcome) -> None:
            collected.append((outcome.index, outcome.result))

        await self._run(recipients, message, keep, slots=None)
        collected.sort(key=lambda pair: pair[0])
        return [result for _, result in collected]

    async def stream(
        self, recipients: Recipients, message: MessageSource
    ) -> AsyncIterator[BulkResult]:
        """Yield results as they complete; memory stays proportional to `concurrency`."""
        async for outcome in self.outcomes(recipients, message):
            yield outcome.result

    async def outcomes(
        self, recipients: Recipients, message: MessageSource
    ) -> AsyncIterator[Outcome]:
        """Like `stream`, with each recipient's full `Outcome`."""
        queue: asyncio.Queue[Outcome | None] = asyncio.Queue()
        slots = asyncio.Semaphore(2 * self.concurrency)
        run = asyncio.ensure_future(self._run(recipients, message, queue.put_nowait, slots=slots))
        run.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (outcome := await queue.get()) is not None:
                slots.release()
                yield outcome
            await run
        finally:
            if not run.done():
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)

    async def _run(
        self,
        recipients: Recipients,
        message: MessageSource,
        emit: Callable[[Outcome], None],
        *,
        slots: asyncio.Semaphore | None,
    ) -> None:
        limiter = self._limiter
        if limiter is None and self.rate is not None:
            # Created here, inside the running loop: aiolimiter binds to the first loop using it.
            limiter = AsyncLimiter(self.burst, self.burst / self.rate)
        self._throttle = _Throttle(limiter, self._clock)
        fragment = None if callable(message) else encode_message(message)

        def finish(outcome: Outcome) -> None:
            if self.on_result is not None:
                self.on_result(outcome)
            emit(outcome)

        send_work, receive_work = anyio.create_memory_object_stream[tuple[int, str, str]](0)
        async with anyio.create_task_group() as group:
            group.start_soon(self._feed, recipients, send_work, finish, slots)
            async with receive_work:
                for _ in range(self.concurrency):
                    group.start_soon(self._work, receive_work.clone(), message, fragment, finish)

    async def _feed(
        self,
        recipients: Recipients,
        work: anyio.abc.ObjectSendStream[tuple[int, str, str]],
        finish: Callable[[Outcome], None],
        slots: asyncio.Semaphore | None,
    ) -> None:
        seen: set[int] = set()
        async with work:
            index = 0
            async for to in _iterate(recipients):
                if slots is not None:
                    await slots.acquire()
                try:
                    digits = normalize_recipient(to)
                except ValueError as invalid:
                    finish(_failure(index, to, None, "invalid", str(invalid), invalid))
                else:
                    number = int(digits) if self.deduplicate else -1
                    if number in seen:
                        error = (
                            f"duplicate recipient {mask_recipient(digits)}: it appears earlier "
                            "in this run, not sent again"
                        )
                        finish(_failure(index, to, digits, "duplicate", error, None))
                    else:
                        if self.deduplicate:
                            seen.add(number)
                        await work.send((index, to, digits))
                index += 1

    async def _work(
        self,
        work: anyio.abc.ObjectReceiveStream[tuple[int, str, str]],
        message: MessageSource,
        fragment: str | None,
        finish: Callable[[Outcome], None],
    ) -> None:
        async with work:
            async for index, to, digits in work:
                if fragment is None:
                    try:
                        body = encode_body(digits, encode_message(message(to)))  # type: ignore[operator]
                    except Exception as exc:  # the caller's callable: fail this recipient only
                        text = f"message for this recipient could not be built: {exc}"
                        finish(_failure(index, to, digits, "invalid", text, exc))
                        continue
                else:
                    body = encode_body(digits, fragment)
                finish(await self._deliver(index, to, digits, body))

    async def _deliver(self, index: int, to: str, digits: str, body: bytes) -> Outcome:
        client, throttle = self.client, self._throttle
        assert throttle is not None
        policy = client.retry_policy
        retries = 0
        started = 0.0
        while True:
            await throttle.admit()
            if retries == 0:
                if self.before_send is not None:
                    await self.before_send(digits)
                started = self._clock()
            with anyio.CancelScope(shield=True):  # an answered request is never lost
                try:
                    sent = await client.post_once(body)
                except GupshupError as error:
                    failed: GupshupError | None = error
                else:
                    failed = None
            latency = self._clock() - started
            if failed is None:
                return Outcome(
                    index, to, digits, "sent", _success(to, sent.raw), None, retries + 1, latency
                )
            retry_after = getattr(failed, "retry_after", None)
            if isinstance(failed, RateLimitError):
                throttle.throttled(retry_after)
            if not policy.should_retry(failed, retries):
                return _failure(
                    index,
                    to,
                    digits,
                    _status(failed),
                    _describe(failed),
                    failed,
                    retries + 1,
                    latency,
                )
            try:
                if not (isinstance(failed, RateLimitError) and retry_after is not None):
                    await policy.sleep(policy.wait_for(failed, retries))  # else: the pause waits
            except asyncio.CancelledError:
                error_text = f"cancelled before retrying ({failed}); not delivered"
                if self.on_result is not None:  # nobody awaits the results any more
                    self.on_result(
                        _failure(
                            index, to, digits, "not_sent", error_text, failed, retries + 1, latency
                        )
                    )
                raise
            retries += 1


def _status(error: GupshupError) -> Status:
    return "ambiguous" if error.ambiguous else "failed"


def _describe(error: GupshupError) -> str:
    if error.ambiguous:
        return f"{error} (may have been delivered; not retried)"
    return str(error)


def _success(to: str, raw: dict[str, Any]) -> BulkSuccess:
    return {"recipient": to, "success": True, "result": raw}


def _failure(
    index: int,
    to: str,
    digits: str | None,
    status: Status,
    error: str,
    exc: BaseException | None,
    attempts: int = 0,
    latency: float = 0.0,
) -> Outcome:
    result: BulkFailure = {"recipient": to, "success": False, "error": error}
    return Outcome(index, to, digits, status, result, exc, attempts, latency)


async def _iterate(recipients: Recipients) -> AsyncIterator[str]:
    if isinstance(recipients, AsyncIterable):
        async for to in recipients:
            yield to
    else:
        for to in recipients:
            yield to
