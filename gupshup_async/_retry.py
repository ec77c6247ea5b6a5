"""RetryPolicy: which failures are retried, how long to wait, and how `Retry-After` is read.

Pure: no I/O. The sleep and the randomness are fields, so tests inject them instead of patching.

A send is a non-idempotent POST. By default only what cannot have delivered is retried:
throttling (429 and the throttling codes), 503, and connection errors that never reached the
server. Ambiguous outcomes (500, 502, 504, read timeouts, a connection dropped after the request
was written) are raised with `ambiguous=True`; `retry_ambiguous=True` opts in to retrying them.

Backoff is capped exponential with full jitter::

    wait(n) = random() * min(backoff_max, backoff_initial * 2**n)     # n = 0 for the first retry

unless the answer carried `Retry-After` (or `retry-after-ms`), which wins, capped at
`retry_after_max`. The pair-rate error 131056 (one recipient messaged too often) waits
`4**n` seconds instead (n = that recipient's retries so far), capped the same way.

`RetryPolicy.decide` is the one place this is written: `send()` and the bulk loop both ask it.
Rate-dependent throttling (HTTP 429, codes 4, 80007, 130429) concerns the whole account: the
decision says so, and the bulk sender then pauses every worker and cuts its shared rate. Other
throttling (131056 for one recipient, 4001 "API rate limited" under another status) backs off
the one recipient only.
"""

from __future__ import annotations

import email.utils
import math
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import anyio

from ._errors import APIError, GupshupError, RateLimitError, is_rate_throttling

DEFAULT_MAX_RETRIES = 2
#: Longest `Retry-After` honoured, in seconds; a longer one is cut to this.
RETRY_AFTER_MAX = 60.0
#: The pair-rate error: this one recipient was messaged too often (Meta advises 4**n s).
PAIR_RATE_CODE = 131056


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """The answer to "retry, and after how long" for one failed attempt, every cap applied.

    `wait` is seconds before the retry (0.0 when `retry` is False). `account_throttled` is True
    for rate-dependent throttling (429 and codes 4, 80007, 130429): the account's shared rate
    should drop. `pause` is the capped `Retry-After` of such an answer, which every worker of
    the account honours (None when absent); it is set even when this recipient is not retried.
    """

    retry: bool
    wait: float
    account_throttled: bool = False
    pause: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """What is retried and how long to wait between attempts (durations in float seconds)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    retry_ambiguous: bool = False
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = RETRY_AFTER_MAX
    sleep: Callable[[float], Awaitable[None]] = field(default=anyio.sleep, repr=False)
    random: Callable[[], float] = field(default=_random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")

    def is_retryable(self, error: GupshupError) -> bool:
        """Whether `error` may be retried under this policy (ignoring the attempt count)."""
        if isinstance(error, RateLimitError):
            return True
        if error.ambiguous:
            return self.retry_ambiguous
        if isinstance(error, APIError):
            return error.status_code == 503
        return True  # a connection error that provably never reached the server

    def decide(
        self, error: GupshupError, retries_done: int, max_retries: int | None = None
    ) -> RetryDecision:
        """Whether to retry after `retries_done` failed retries, and after how many seconds.

        `max_retries` overrides the policy's count for one call. The wait is the capped
        `Retry-After` when the answer has one, `4**n` s for the pair-rate error, else capped
        exponential backoff with full jitter; never more than `retry_after_max`.
        """
        limit = self.max_retries if max_retries is None else max_retries
        retry_after = error.retry_after if isinstance(error, APIError) else None
        if retry_after is not None:
            retry_after = min(max(retry_after, 0.0), self.retry_after_max)
        account = is_rate_throttling(error)
        pause = retry_after if account else None
        if retries_done >= limit or not self.is_retryable(error):
            return RetryDecision(False, 0.0, account, pause)
        if retry_after is not None:
            wait = retry_after
        elif isinstance(error, APIError) and error.code == PAIR_RATE_CODE:
            wait = min(4.0**retries_done, self.retry_after_max)
        else:
            ceiling = min(self.backoff_max, self.backoff_initial * 2.0**retries_done)
            wait = min(self.random() * ceiling, self.retry_after_max)
        return RetryDecision(True, wait, account, pause)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date.

    Returns None when absent or unreadable; never raises. `now` is a Unix time, for tests.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return _seconds_until(raw, time.time() if now is None else now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    return max(moment.timestamp() - now, 0.0)
