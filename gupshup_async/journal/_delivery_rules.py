"""Delivery truth, whatever the store: how an event is kept, whom it settles, what moves forward.

Both journals (SQLite's `_sqlite_delivery`, Postgres's `_pg_delivery`) store every webhook
event once under its unique key and apply the new statuses with these rules:

- An event settles the recipient its callback data names (`row_hint`) when that recipient has
  no message id yet or the event's; else the recipient whose send answered with its message
  id. Phone numbers are never matched (Gupshup masks them).
- A recipient's status only moves to a higher rank (`webhooks.reconcile.RANKS`): of a batch's
  events for one recipient only the furthest can matter, so it alone is applied, and the store
  applies it only where the recipient's rank is lower (`FORWARD_ONLY`, checked by the database
  on the row it writes, so concurrent writers cannot move a status back).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

#: The condition under which a stored status is replaced (`rank` is the new event's rank).
FORWARD_ONLY = "COALESCE({current}, 0) < {rank}"

Hint = TypeVar("Hint", bound=Hashable)
Target = TypeVar("Target", bound=Hashable)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One webhook event as stored: `key` is unique; status events carry a `rank`.

    `row_hint` is the recipient's row when the event's callback data names it; with a Postgres
    key it comes with the `campaign` and that campaign's callback `tag`.
    """

    key: str
    kind: str
    raw: str
    message_id: str | None = None
    status: str | None = None
    rank: int | None = None
    at: float | None = None
    row_hint: int | None = None
    code: int | None = None
    title: str | None = None
    campaign: int | None = None
    tag: str | None = None


def first_of_each_key(rows: Iterable[EventRow]) -> tuple[list[EventRow], list[bool]]:
    """The rows with a key not seen before in `rows`, and per row whether it is one of them."""
    seen: set[str] = set()
    unique: list[EventRow] = []
    first: list[bool] = []
    for row in rows:
        new = row.key not in seen
        first.append(new)
        if new:
            seen.add(row.key)
            unique.append(row)
    return unique, first


def match_targets(
    rows: Iterable[EventRow],
    hint_of: Callable[[EventRow], Hint | None],
    hinted: Mapping[Hint, tuple[Target, str | None]],
    by_id: Mapping[str, Target],
) -> dict[str, Target]:
    """Event key -> recipient, for the status events whose recipient is known.

    `hinted` maps a callback hint to its recipient and that recipient's message id (None: not
    known yet); `by_id` maps known message ids to their recipients.
    """
    known = dict(by_id)
    targets: dict[str, Target] = {}
    for row in rows:
        hint = hint_of(row)
        found = hinted.get(hint) if hint is not None else None
        if found is not None and found[1] in (None, row.message_id):
            targets[row.key] = found[0]
            if row.message_id is not None:
                known.setdefault(row.message_id, found[0])  # later events of this batch too
        elif row.message_id is not None and row.message_id in known:
            targets[row.key] = known[row.message_id]
    return targets


def furthest(
    rows: Iterable[EventRow], targets: Mapping[str, Target]
) -> list[tuple[Target, EventRow]]:
    """Per recipient, its furthest status among `rows` (the first of equal ranks)."""
    best: dict[Target, EventRow] = {}
    for row in rows:
        target = targets.get(row.key)
        if target is None or row.rank is None:
            continue
        held = best.get(target)
        if held is None or (held.rank or 0) < row.rank:
            best[target] = row
    return list(best.items())


def delivery_fields(
    status: str, at: float | None, code: int | None, title: str | None
) -> dict[str, Any]:
    """A result row's delivery fields: status, ISO time, and a failure's code and title."""
    fields: dict[str, Any] = {"delivery": status}
    if at is not None:
        fields["delivery_at"] = datetime.fromtimestamp(at, tz=timezone.utc).isoformat()
    if code is not None or title is not None:
        fields["failure_code"], fields["failure_title"] = code, title
    return fields
