"""What every journal backend promises the sender: the write-ahead mark and the final record.

The rules, whatever the store (SQLite on one machine, Postgres across machines):
- `mark_sending` returns only once the recipient's `sending` mark is committed; a recipient
  whose mark fails is never sent (the error reaches the caller, and nothing more is sent).
- Marks and final states made during one event-loop turn share one commit.
- A resumed run turns `sending` rows into `ambiguous`: what may have gone out is not sent again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import NamedTuple, Protocol

from .._bulk import Outcome

#: States after which a recipient is never sent again by a resumed run.
FINAL_STATES = ("sent", "failed", "ambiguous", "invalid", "duplicate")

DUPLICATE_ERROR = "duplicate recipient: it appears earlier in the file, not sent again"

#: The error a `sending` row gets when the run that marked it died or lost its lease.
INTERRUPTED_ERROR = "interrupted while sending: may have been delivered; not re-sent"


class FinalRecord(NamedTuple):
    """What a journal row keeps of an outcome: its state, error text and JSON answer."""

    state: str
    error: str | None
    result: str | None


def final_record(outcome: Outcome) -> FinalRecord | None:
    """The row fields for `outcome`, or None when it is not the journal's to record.

    Invalid numbers and repeats were decided when the recipients were loaded; "not_sent"
    (stopped before a send or a retry) goes back to pending: it surely did not deliver.
    """
    if outcome.digits is None or outcome.status == "duplicate":
        return None
    state = "pending" if outcome.status == "not_sent" else outcome.status
    if outcome.result["success"]:
        return FinalRecord(state, None, outcome.raw_json or json.dumps(outcome.result["result"]))
    return FinalRecord(state, outcome.result["error"], None)


def sent_message_id(outcome: Outcome) -> str | None:
    """The API's message id of an accepted send, or None (no send, or an answer without one)."""
    if not outcome.result["success"]:
        return None
    try:
        message_id = outcome.result["result"]["messages"][0]["id"]
    except (KeyError, IndexError, TypeError):
        return None
    return message_id if isinstance(message_id, str) else None


class SendJournal(Protocol):
    """The part of a journal that a `BulkSender` run writes through (`before_send`, `on_result`)."""

    def mark_sending(self, digits: str) -> Awaitable[None]:
        """Mark `digits` as being sent; done once the mark is committed, raise if it is not."""
        ...

    def record(self, outcome: Outcome) -> None:
        """Queue `outcome` as the recipient's state, committed with the next group."""
        ...
