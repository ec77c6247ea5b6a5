"""What the mock saw: accepted messages and attempts per recipient, for exactly-once checks."""

from __future__ import annotations

import array
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AcceptedMessage:
    """One message the mock accepted; `arrival` is `time.monotonic()` at the server."""

    id: str
    to: str
    type: str
    arrival: float


class Recorder:
    """Counts attempts and accepted messages; keeps each accepted one when `keep_messages`.

    Thread-safe: the mock may serve from its own thread while a test reads.
    """

    def __init__(self, *, keep_messages: bool = True) -> None:
        self.keep_messages = keep_messages
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        with self._lock:
            self.messages: list[AcceptedMessage] = []
            self.arrivals = array.array("d")  # 8 bytes a message, kept even without messages
            self.attempts: Counter[str] = Counter()
            self.accepted: Counter[str] = Counter()
            self.total_attempts = 0
            self.total_accepted = 0
            self.in_flight = 0
            self.max_in_flight = 0

    def attempt(self, to: str) -> int:
        """Count an attempt for `to`; return how many came before it (0 for the first)."""
        with self._lock:
            before = self.attempts[to]
            self.attempts[to] = before + 1
            self.total_attempts += 1
            return before

    def accept(self, message: AcceptedMessage) -> None:
        """Record an accepted message."""
        with self._lock:
            self.accepted[message.to] += 1
            self.total_accepted += 1
            self.arrivals.append(message.arrival)
            if self.keep_messages:
                self.messages.append(message)

    def enter(self) -> None:
        """A request started being handled."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        """A request finished being handled."""
        with self._lock:
            self.in_flight -= 1

    def arrival_times(self, since: int = 0) -> list[float]:
        """Arrival times (`time.monotonic()` at the server) of accepted messages from `since`."""
        with self._lock:
            return self.arrivals[since:].tolist()

    def stats(self, *, per_recipient: bool = True) -> dict[str, Any]:
        """A JSON-ready summary, as served at `GET /_mock/stats`."""
        with self._lock:
            data: dict[str, Any] = {
                "attempts": self.total_attempts,
                "accepted": self.total_accepted,
                "max_in_flight": self.max_in_flight,
            }
            if per_recipient:
                data["recipients"] = {
                    to: {"attempts": n, "accepted": self.accepted.get(to, 0)}
                    for to, n in self.attempts.items()
                }
            return data
