"""RetryPolicy: which failures are retried, how long to wait, and how `Retry-After` is read.

Pure: no I/O. The sleep and the randomness are fields, so tests inject them instead of patching.

A send is a non-idempotent POST. By default only what cannot have delivered is retried:
throttling (429 and the throttling codes), 503, and connection errors that never reached the
server. Ambiguous outcomes (500, 502, 504, read timeouts, a connection dropped after the request
was written) are raised with `ambiguous=True`; `retry_ambiguous=True` opts in to retrying them.

Backoff is capped exponential with full jitter::

    wait(n) = random() * min(backoff_max, backoff_initial * 2**n)     # n = 0 for the first retry

unless the answer carried `Retry-After` (or `retry-after-ms`), which wins, capped at
`retry_after_max`.
"""

from __future__ import annotations

import email.utils
import math
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import anyio

from ._errors import APIError, GupshupError, RateLimitError

DEFAULT_MAX_RETRIES = 2
#: Longest `Retry-After` honoured, in seconds; a longer one is cut to this.
RETRY_AFTER_MAX = 60.0


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

    def should_retry(
        self, error: GupshupError, retries_done: int, max_retries: int | None = None
    ) -> bool:
        """Whether to try again after `retries_done` retries have already failed."""
        limit = self.max_retries if max_retries is None else max_retries
        return retries_done < limit and self.is_retryable(error)

    def wait_for(self, error: GupshupError, retries_done: int) -> float:
        """Seconds to wait before retry number `retries_done + 1`."""
        retry_after = error.retry_after if isinstance(error, APIError) else None
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_initial * 2.0**retries_done)
        return self.random() * ceiling


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
