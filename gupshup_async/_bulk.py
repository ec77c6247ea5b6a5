"""BulkSender: one message (or one per recipient) to many recipients at the account's rate.

A fixed pool of `concurrency` workers pulls from the recipients as they are iterated (never one
task per recipient); every attempt is first admitted by the sender's `Pacer` (the token bucket,
pauses and slow-downs on throttling, see `_pacing`).

State lives in what it describes: the account's rate (bucket, rate factor, `Retry-After` pause)
belongs to the sender and is shared by concurrent runs; each run (`_Run`) holds its workers,
input, duplicate check and stop flag. Whether and when to retry is `RetryPolicy.decide`, the
same decision `AsyncGupshupClient.send()` uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypedDict

from aiolimiter import AsyncLimiter

from ._client import AsyncGupshupClient, check_callback_data, encode_body, encode_message
from ._errors import GupshupError, RateLimitError
from ._messages import Message
from ._pacing import Pacer
from ._recipients import NumberSet, mask_recipient, normalize_recipient
from ._retry import RetryDecision

DEFAULT_RATE = 80.0
DEFAULT_CONCURRENCY = 64


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
#: `biz_opaque_callback_data` for every send of a run: one string, or one per recipient.
CallbackData: TypeAlias = str | Callable[[str], str | None] | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One recipient's final result with the details a journal or summary needs.

    `status` is "sent", "failed" (surely not delivered), "ambiguous" (may have been delivered),
    "invalid" (bad number or message), "duplicate" (repeated in this run, not sent) or
    "not_sent" (stopped before its first request or before a retry; surely not delivered).
    `latency` is seconds from the first request to the final answer; `index` the position
    in the input; `raw_json` a sent message's answer as received (`SendResult.raw_json`).
    """

    index: int
    recipient: str
    digits: str | None
    status: Status
    result: BulkResult
    error: BaseException | None = None
    attempts: int = 0
    latency: float = 0.0
    raw_json: str = field(default="", repr=False, compare=False)

    @property
    def code(self) -> int | None:
        """The provider's error code, when the API gave one."""
        return getattr(self.error, "code", None)


class BulkSender:
    """Fans messages out through a token bucket with bounded concurrency.

    `rate` is in messages per second (None: unlimited); `burst` is the bucket size (default a
    tenth of a second's worth, at least 1); `concurrency` bounds the requests in flight.
    Pass `limiter` to share one account's bucket between senders and single sends.
    `on_result` is called with each `Outcome` as it completes (progress bars, journals);
    `before_send(digits)` is awaited once per recipient, after its first bucket token and
    before its first request (a journal's write-ahead mark). `deduplicate=False` skips the
    in-memory check for repeated numbers, for callers that deduplicate already (the journal).
    Concurrent `send()`/`stream()` calls on one sender share its rate.
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
        self._pacer: Pacer | None = None
        self._pacer_loop: asyncio.AbstractEventLoop | None = None
        self._runs = 0
        self._throttled = 0

    @property
    def rate_cuts(self) -> int:
        """How many times throttling made this sender halve its rate."""
        return self._pacer.cuts if self._pacer else 0

    @property
    def throttled(self) -> int:
        """How many throttled answers (`RateLimitError`s) this sender has received."""
        return self._throttled

    @property
    def current_rate(self) -> float | None:
        """The effective rate (msg/s) allowed now after throttling, or None if unlimited."""
        if self.rate is None:
            return None
        return self.rate * (self._pacer.current_factor() if self._pacer else 1.0)

    @property
    def lowest_rate(self) -> float | None:
        """The lowest effective rate (msg/s) this sender fell to, or None if unlimited."""
        if self._pacer is None or self.rate is None:
            return None
        return self.rate * self._pacer.lowest_factor

    async def send(
        self,
        recipients: Recipients,
        message: MessageSource,
        *,
        biz_opaque_callback_data: CallbackData = None,
    ) -> list[BulkResult]:
        """Send to every recipient; one result per input entry, in input order.

        `biz_opaque_callback_data` (a string, or a callable recipient -> string or None) goes
        on each send and comes back in its status webhooks; at most 512 characters.
        """
        collected: list[tuple[int, BulkResult]] = []

        def keep(outcome: Outcome) -> None:
            collected.append((outcome.index, outcome.result))

        await self._run(recipients, message, keep, slots=None, callback=biz_opaque_callback_data)
        collected.sort(key=lambda pair: pair[0])
        return [result for _, result in collected]

    async def run(
        self,
        recipients: Recipients,
        message: MessageSource,
        *,
        biz_opaque_callback_data: CallbackData = None,
        until: Callable[[], bool] | None = None,
    ) -> None:
        """Send to every recipient and keep nothing: each `Outcome` reaches `on_result` only.

        For journals and counters over any number of recipients: no result is held or
        queued, so memory stays flat and a message costs least. `until()` is asked after each
        outcome: once it is true the run stops and returns (a campaign's stop rule). Either
        way, like cancelling the call, requests in flight finish and are reported first.
        """
        await self._run(
            recipients,
            message,
            _discard,
            slots=None,
            callback=biz_opaque_callback_data,
            until=until,
        )

    async def stream(
        self,
        recipients: Recipients,
        message: MessageSource,
        *,
        biz_opaque_callback_data: CallbackData = None,
    ) -> AsyncGenerator[BulkResult, None]:
        """Yield results as they complete; memory stays proportional to `concurrency`.

        Leaving the loop early stops the run once the generator is closed: wrap it in
        `contextlib.aclosing()` to close it at once rather than when it is collected.
        """
        outcomes = self.outcomes(
            recipients, message, biz_opaque_callback_data=biz_opaque_callback_data
        )
        async with contextlib.aclosing(outcomes):
            async for outcome in outcomes:
                yield outcome.result

    async def outcomes(
        self,
        recipients: Recipients,
        message: MessageSource,
        *,
        biz_opaque_callback_data: CallbackData = None,
    ) -> AsyncGenerator[Outcome, None]:
        """Like `stream`, with each recipient's full `Outcome`."""
        if isinstance(biz_opaque_callback_data, str):
            check_callback_data(biz_opaque_callback_data)  # before any request
        queue: asyncio.Queue[Outcome | None] = asyncio.Queue()
        slots = asyncio.Semaphore(2 * self.concurrency)
        run = asyncio.ensure_future(
            self._run(
                recipients,
                message,
                queue.put_nowait,
                slots=slots,
                callback=biz_opaque_callback_data,
            )
        )
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
        callback: CallbackData = None,
        until: Callable[[], bool] | None = None,
    ) -> None:
        if isinstance(callback, str):
            check_callback_data(callback)
        pacer = await self._shared_pacer()
        self._runs += 1
        try:
            run = _Run(self, recipients, message, emit, slots, pacer)
            run.callback = callback
            run.until = until
            await run.execute()
        finally:
            self._runs -= 1
            if self._runs == 0:
                pacer.close()  # nobody waits any more; the next run starts it again

    async def _shared_pacer(self) -> Pacer:
        """The account's pacer, created inside the running loop (aiolimiter binds to it)."""
        loop = asyncio.get_running_loop()
        if self._pacer is not None and self._pacer_loop is loop:
            return self._pacer
        limiter = self._limiter
        if limiter is None and self.rate is not None:
            limiter = AsyncLimiter(self.burst, self.burst / self.rate)
        self._pacer, self._pacer_loop = Pacer(limiter, self._clock, rate=self.rate), loop
        pacer = self._pacer
        if limiter is not None and self._limiter is None:
            # Start with a full bucket: the first second holds no burst, only the rate.
            await limiter.acquire(self.burst)
        return pacer


class _Run:
    """One call's worker pool: the shared input, the workers, and a graceful stop.

    Plain asyncio on purpose: this is the per-message hot path, and memory streams and cancel
    scopes cost ~15% of a send here (measured). On cancellation, workers waiting for a token,
    a backoff or input are cancelled (a recipient drawn but not on the wire is reported
    "not_sent" through `on_result`); workers inside a request finish it (bounded by the
    client's whole-attempt `timeout`) and report it.
    """

    def __init__(
        self,
        sender: BulkSender,
        recipients: Recipients,
        message: MessageSource,
        emit: Callable[[Outcome], None],
        slots: asyncio.Semaphore | None,
        pacer: Pacer,
    ) -> None:
        self.sender = sender
        self.client = sender.client
        self.policy = sender.client.retry_policy
        self.message = message
        self.fragment = None if callable(message) else encode_message(message)
        self.callback: CallbackData = None
        self.emit = emit
        self.on_result = sender.on_result
        self.slots = slots
        self.pacer = pacer
        self.clock = sender._clock
        self.seen = NumberSet() if sender.deduplicate else None
        self.index = 0
        self.stopping = False
        self.until: Callable[[], bool] | None = None
        self.workers: list[asyncio.Task[None]] = []
        self.busy: set[asyncio.Task[None]] = set()
        if isinstance(recipients, AsyncIterable):
            self.async_input: AsyncIterator[str] | None = aiter(recipients)
            self.sync_input: Iterator[str] | None = None
        else:
            self.async_input, self.sync_input = None, iter(recipients)
        self.input_lock = asyncio.Lock()

    async def execute(self) -> None:
        workers = [asyncio.ensure_future(self.work()) for _ in range(self.sender.concurrency)]
        self.workers = workers
        try:
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled():  # cancelled by stop(): it reported its recipient
                    task.result()  # an error in a callback or the input: raise it here
        except BaseException:
            self.stop()
            await asyncio.wait(workers)  # the busy ones finish their request first
            raise
        finally:
            if isinstance(self.async_input, AsyncGenerator):
                await self.async_input.aclose()

    def stop(self) -> None:
        """Send nothing new: workers waiting (input, a token, a backoff) are cancelled and
        report their recipient as not sent; those inside a request finish it first."""
        self.stopping = True
        for task in self.workers:
            if task not in self.busy:
                task.cancel()

    def finish(self, outcome: Outcome) -> None:
        if self.on_result is not None:
            self.on_result(outcome)
        self.emit(outcome)
        if self.until is not None and not self.stopping and self.until():
            self.stop()

    async def next_item(self) -> tuple[int, str, str] | None:
        """The next recipient to send; invalid and repeated ones are reported on the way."""
        while not self.stopping:
            if self.slots is not None:
                await self.slots.acquire()
            if self.sync_input is not None:
                to = next(self.sync_input, None)
            else:
                async with self.input_lock:
                    assert self.async_input is not None
                    to = await anext(self.async_input, None)
            if to is None:
                if self.slots is not None:
                    self.slots.release()
                return None
            index = self.index
            self.index += 1
            try:
                digits = normalize_recipient(to)
            except ValueError as invalid:
                self.finish(_failure(index, to, None, "invalid", str(invalid), invalid))
                continue
            if self.seen is not None and not self.seen.add(int(digits)):
                error = (
                    f"duplicate recipient {mask_recipient(digits)}: it appears earlier "
                    "in this run, not sent again"
                )
                self.finish(_failure(index, to, digits, "duplicate", error, None))
                continue
            return index, to, digits
        return None

    async def work(self) -> None:
        while (item := await self.next_item()) is not None:
            index, to, digits = item
            if self.fragment is None or callable(self.callback):
                try:
                    built = self.fragment or encode_message(self.message(to))  # type: ignore[operator]
                    callback = self.callback(to) if callable(self.callback) else self.callback
                    body = encode_body(digits, built, biz_opaque_callback_data=callback)
                except Exception as exc:  # the caller's callable: fail this recipient only
                    text = f"message for this recipient could not be built: {exc}"
                    self.finish(_failure(index, to, digits, "invalid", text, exc))
                    continue
            else:
                body = encode_body(digits, self.fragment, biz_opaque_callback_data=self.callback)
            self.finish(await self.deliver(index, to, digits, body))

    async def deliver(self, index: int, to: str, digits: str, body: bytes) -> Outcome:
        """Send with retries until success, a final failure, or a stop."""
        pacer, policy, before_send = self.pacer, self.policy, self.sender.before_send
        task = asyncio.current_task()
        assert task is not None
        retries = 0
        started = latency = 0.0
        failed: GupshupError | None = None
        while True:
            try:
                if not pacer.open():
                    await pacer.admit()
            except asyncio.CancelledError:
                self.report_unsent(index, to, digits, failed, retries, latency)
                raise
            if retries == 0:
                if before_send is not None:
                    self.busy.add(task)  # a write-ahead mark is not abandoned half-way
                    try:
                        await before_send(digits)
                    finally:
                        self.busy.discard(task)
                started = self.clock()
            if self.stopping:
                return self.unsent(index, to, digits, failed, retries, latency)
            self.busy.add(task)  # from here on a stop waits for the answer
            try:
                sent = await self.client._post_once(body)
            except GupshupError as error:
                failed = error
            else:
                latency = self.clock() - started
                self.client._report_attempt(retries + 1, digits, None, None)
                result = _success(to, sent.raw)
                return Outcome(
                    index, to, digits, "sent", result, None, retries + 1, latency, sent.raw_json
                )
            finally:
                self.busy.discard(task)
            latency = self.clock() - started
            decision = self.decide(failed, retries)
            if self.stopping or not decision.retry:
                self.client._report_attempt(retries + 1, digits, failed, None)
                status = _status(failed)
                if self.stopping and status == "failed" and policy.is_retryable(failed):
                    status = "not_sent"  # stopped before its retry: surely not delivered
                return _failure(
                    index, to, digits, status, _describe(failed), failed, retries + 1, latency
                )
            self.client._report_attempt(retries + 1, digits, failed, decision.wait)
            retries += 1
            if decision.pause is None:  # else the account's pause holds every worker in admit()
                try:
                    await policy.sleep(decision.wait)
                except asyncio.CancelledError:
                    self.report_unsent(index, to, digits, failed, retries, latency)
                    raise

    def decide(self, failed: GupshupError, retries: int) -> RetryDecision:
        """The policy's decision, with rate-dependent throttling noted on the shared pacer."""
        decision = self.policy.decide(failed, retries)
        if isinstance(failed, RateLimitError):
            self.sender._throttled += 1
        if decision.account_throttled:
            self.pacer.throttled(decision.pause)
        return decision

    def unsent(
        self,
        index: int,
        to: str,
        digits: str,
        failed: GupshupError | None,
        attempts: int,
        latency: float,
    ) -> Outcome:
        """A recipient stopped before its first request or before a retry: surely not sent."""
        if failed is None:
            return _failure(index, to, digits, "not_sent", "stopped before sending", None)
        text = f"stopped before retrying ({failed}); not delivered"
        return _failure(index, to, digits, "not_sent", text, failed, attempts, latency)

    def report_unsent(
        self,
        index: int,
        to: str,
        digits: str,
        failed: GupshupError | None,
        attempts: int,
        latency: float,
    ) -> None:
        """On cancellation nobody awaits the results any more: only `on_result` hears it."""
        if self.on_result is not None:
            self.on_result(self.unsent(index, to, digits, failed, attempts, latency))


def _discard(outcome: Outcome) -> None:
    """What `run()` does with an outcome once `on_result` has it: nothing."""


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
