"""Seeded, reproducible fault injection for the mock: what each attempt of a recipient gets.

A fault is chosen per (recipient, attempt number), from a schedule first, then by probability
from a generator seeded with (seed, recipient, attempt): the same plan gives the same faults
whatever order concurrent requests arrive in.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: Every fault kind the mock can inject, and "ok" for none.
#: - "429", "429_meta": throttled (Gupshup or Meta 130429 body), not recorded; Retry-After
#:   only when the plan sets `retry_after`.
#: - "429_after": throttled with Retry-After (the plan's `retry_after`, else 1 s).
#: - "400": refused as a bad request (an invalid destination), not recorded.
#: - "500", "502", "503", "504": error status, not recorded.
#: - "html_502": a proxy's HTML error page, not recorded.
#: - "drop_before": connection closed before processing, not recorded.
#: - "drop_after": recorded, then the connection closed without an answer.
#: - "slow": recorded after `slow_seconds` (set it above the client's timeout).
#: - "empty", "html_200", "truncated_json", "no_message_id": recorded, 200 with a malformed
#:   body (nothing, an HTML page, cut JSON, a success without `messages[0].id`).
FAULT_KINDS = frozenset(
    {
        "ok",
        "429",
        "429_meta",
        "429_after",
        "400",
        "500",
        "502",
        "503",
        "504",
        "html_502",
        "drop_before",
        "drop_after",
        "slow",
        "empty",
        "html_200",
        "truncated_json",
        "no_message_id",
    }
)

#: Faults after which the mock has recorded the message although the client got no success.
RECORDED_FAULTS = frozenset(
    {"drop_after", "slow", "empty", "html_200", "truncated_json", "no_message_id"}
)


@dataclass(frozen=True)
class FaultPlan:
    """What to inject: `rates` maps kinds to probabilities, `schedule` maps a recipient's digits
    to the kinds of its successive attempts (then "ok"). Latency in float seconds.

    `retry_after` is sent on 429s: seconds (float), "date" for an HTTP date, or None.
    """

    seed: int = 0
    rates: Mapping[str, float] = field(default_factory=dict)
    schedule: Mapping[str, Sequence[str]] = field(default_factory=dict)
    latency: float = 0.0
    latency_jitter: float = 0.0
    slow_seconds: float = 30.0
    retry_after: float | str | None = None

    def __post_init__(self) -> None:
        unknown = (set(self.rates) | {k for ks in self.schedule.values() for k in ks}) - FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown fault kind(s): {sorted(unknown)}")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")

    def fault_for(self, recipient: str, attempt: int) -> str:
        """The fault for attempt number `attempt` (0-based) of `recipient`."""
        planned = self.schedule.get(recipient)
        if planned is not None and attempt < len(planned):
            return planned[attempt]
        if not self.rates:
            return "ok"
        draw = random.Random(f"{self.seed}:{recipient}:{attempt}").random()
        for kind, rate in sorted(self.rates.items()):
            if draw < rate:
                return kind
            draw -= rate
        return "ok"

    def delay_for(self, recipient: str, attempt: int) -> float:
        """Added latency in seconds for this attempt."""
        if not self.latency_jitter:
            return self.latency
        jitter = random.Random(f"latency:{self.seed}:{recipient}:{attempt}").random()
        return self.latency + jitter * self.latency_jitter
