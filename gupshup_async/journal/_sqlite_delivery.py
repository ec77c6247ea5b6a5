"""The SQLite journal's delivery half: webhook events stored once, statuses moved forward.

Per recipient the journal keeps the message id (the send's `gs_id`), the furthest delivery
status with its rank and time, and a failure's code and title. Every webhook event is stored
in `webhook_events` under a unique key (message id + status, or the inbound wamid), so a
repeated delivery is recognised and applied once, and the receiver can acknowledge after the
commit. An event whose message is not known yet (its send's answer is still in flight) stays
`applied = 0` until `apply_unmatched` finds its recipient.

A send's final state writes its message id; a trigger fills it from the stored answer for
rows written without one (older versions). What a rank means (and what `failed` after `delivered`
means) is decided in `gupshup_async.webhooks.reconcile`; which recipient an event settles and
that a status only moves to a higher rank, in `_delivery_rules` (shared with Postgres).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ._delivery_rules import (
    FORWARD_ONLY,
    EventRow,
    delivery_fields,
    first_of_each_key,
    furthest,
    match_targets,
)

__all__ = ["DeliveryRecords", "EventRow", "delivery_fields"]

_DELIVERY_COLUMNS = (
    ("message_id", "TEXT"),
    ("delivery", "TEXT"),
    ("delivery_rank", "INTEGER"),
    ("delivery_at", "REAL"),
    ("failure_code", "INTEGER"),
    ("failure_title", "TEXT"),
)

#: Move a recipient to a status of higher rank (never back); fill its message id if unknown.
_MOVE = (
    "UPDATE recipients SET message_id = COALESCE(message_id, ?), delivery = ?, "
    "delivery_rank = ?, delivery_at = ?, failure_code = ?, failure_title = ? "
    "WHERE idx = ? AND " + FORWARD_ONLY.format(current="delivery_rank", rank="?")
)
#: Parameters per `IN (...)` query, well under SQLite's limit of 999 in older builds.
_IN_CHUNK = 500

_DELIVERY_SCHEMA = (
    # Only rows with an id are indexed: a send's answer then adds one entry instead of moving
    # it out of the NULLs every unsent row shares (measured: ~9k instructions a recipient).
    "DROP INDEX IF EXISTS recipients_message_id",
    "CREATE INDEX IF NOT EXISTS recipients_sent_message_id ON recipients (message_id) "
    "WHERE message_id IS NOT NULL",
    # The send's answer carries the message id: copy it when the answer is stored.
    "CREATE TRIGGER IF NOT EXISTS recipients_message_id_from_result "
    "AFTER UPDATE OF result ON recipients "
    "WHEN NEW.result IS NOT NULL AND NEW.message_id IS NULL BEGIN "
    "UPDATE recipients SET message_id = json_extract(NEW.result, '$.messages[0].id') "
    "WHERE idx = NEW.idx; END",
    """CREATE TABLE IF NOT EXISTS webhook_events (
        key        TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        message_id TEXT,
        status     TEXT,
        rank       INTEGER,
        at         REAL,
        row_hint   INTEGER,
        code       INTEGER,
        title      TEXT,
        raw        TEXT NOT NULL,
        received   REAL NOT NULL,
        applied    INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS webhook_events_unapplied ON webhook_events (message_id) "
    "WHERE applied = 0",
)


class DeliveryRecords:
    """Mixed into `Journal`: the delivery columns, the events table and the funnel queries."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[None]:  # pragma: no cover - Journal's
        raise NotImplementedError

    def _add_delivery_schema(self) -> None:
        """Add what an older journal file lacks (columns, index, trigger, events table)."""
        with self._transaction():
            have = {row[1] for row in self._db.execute("PRAGMA table_info(recipients)")}
            for name, kind in _DELIVERY_COLUMNS:
                if name not in have:
                    self._db.execute(f"ALTER TABLE recipients ADD COLUMN {name} {kind}")
            if "message_id" not in have:  # an older journal: its sends' answers hold the ids
                self._db.execute(
                    "UPDATE recipients SET message_id = "
                    "json_extract(result, '$.messages[0].id') WHERE result IS NOT NULL"
                )
            for statement in _DELIVERY_SCHEMA:
                self._db.execute(statement)

    @property
    def stored_callback_tag(self) -> str | None:
        """The campaign's callback tag if a send made one (read only: a receiver never makes it,
        so a journal it creates first still binds to its campaign)."""
        row = self._db.execute("SELECT value FROM campaign WHERE key = 'callback_tag'").fetchone()
        return str(row[0]) if row is not None else None

    @property
    def callback_tag(self) -> str:
        """This campaign's random tag, the first half of every send's callback key."""
        tag = self.stored_callback_tag
        if tag is not None:
            return tag
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO campaign (key, value) VALUES ('callback_tag', ?)",
                (secrets.token_hex(6),),
            )
        row = self._db.execute("SELECT value FROM campaign WHERE key = 'callback_tag'").fetchone()
        return str(row[0])

    def store_events(self, rows: Sequence[EventRow]) -> list[bool]:
        """Store the events and apply the new statuses, in one transaction.

        Returns, per row, whether it was new (False: a repeated delivery, applied before).
        The answer may be acknowledged once this returns: the events are committed. A batch
        costs a handful of statements whatever its size (one round trip per event cost
        ~25 us more per event, measured).
        """
        now = time.time()
        unique, first = first_of_each_key(rows)  # the same event twice in one batch: once
        with self._transaction():
            known = self._existing_keys([row.key for row in unique])
            new_rows = [row for row in unique if row.key not in known]
            targets = self._targets([row for row in new_rows if row.rank is not None])
            self._db.executemany(
                "INSERT INTO webhook_events (key, kind, message_id, status, rank, at, row_hint, "
                "code, title, raw, received, applied) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (row.key, row.kind, row.message_id, row.status, row.rank, row.at,
                     row.row_hint, row.code, row.title, row.raw, now, int(row.key in targets))
                    for row in new_rows
                ],
            )  # fmt: skip
            self._db.executemany(
                _MOVE,
                [
                    (row.message_id, row.status, row.rank, row.at, row.code, row.title, idx,
                     row.rank)
                    for idx, row in furthest(new_rows, targets)
                ],
            )  # fmt: skip
        return [
            is_first and row.key not in known for row, is_first in zip(rows, first, strict=True)
        ]

    def _select_in(self, query: str, values: Sequence[object]) -> list[tuple[Any, ...]]:
        """`query` ending in `IN` run over `values`, in chunks of `_IN_CHUNK`."""
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(values), _IN_CHUNK):
            chunk = values[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.extend(self._db.execute(f"{query} ({marks})", chunk).fetchall())
        return found

    def _existing_keys(self, keys: list[str]) -> set[str]:
        return {
            key for (key,) in self._select_in("SELECT key FROM webhook_events WHERE key IN", keys)
        }

    def _targets(self, rows: list[EventRow]) -> dict[str, int]:
        """Event key -> recipient row, for the statuses whose recipient is known."""
        hints = sorted({row.row_hint for row in rows if row.row_hint is not None})
        ids = sorted({row.message_id for row in rows if row.message_id is not None})
        hinted = {
            idx: (idx, message_id)
            for idx, message_id in self._select_in(
                "SELECT idx, message_id FROM recipients WHERE idx IN", hints
            )
        }
        by_id: dict[str, int] = dict(
            self._select_in("SELECT message_id, idx FROM recipients WHERE message_id IN", ids)
        )
        return match_targets(rows, lambda row: row.row_hint, hinted, by_id)

    def apply_unmatched(self) -> int:
        """Apply stored statuses whose recipient is now known; returns how many were applied."""
        with self._transaction():
            found = self._db.execute(
                "SELECT e.rowid, r.idx, e.message_id, e.status, e.rank, e.at, e.code, e.title "
                "FROM webhook_events AS e JOIN recipients AS r ON r.message_id = e.message_id "
                "WHERE e.applied = 0 AND e.rank IS NOT NULL"
            ).fetchall()
            for rowid, idx, message_id, status, rank, at, code, title in found:
                self._move(idx, message_id, status, rank, at, code, title)
                self._db.execute("UPDATE webhook_events SET applied = 1 WHERE rowid = ?", (rowid,))
        return len(found)

    def _move(
        self,
        idx: int,
        message_id: str | None,
        status: str | None,
        rank: int | None,
        at: float | None,
        code: int | None,
        title: str | None,
    ) -> None:
        self._db.execute(_MOVE, (message_id, status, rank, at, code, title, idx, rank))

    # ------------------------------------------------------------ reading

    def delivery_counts(self) -> dict[str, Any]:
        """Per state and delivery status, how many recipients: the funnel's raw material."""
        rows = self._db.execute(
            "SELECT state, delivery, failure_code, COUNT(*) FROM recipients "
            "GROUP BY state, delivery, failure_code"
        ).fetchall()
        return {"groups": [tuple(row) for row in rows]}

    def delivery_failures(self) -> Iterator[tuple[Any, ...]]:
        """(recipient, state, message_id, delivery, failure_code, failure_title, error) of
        every recipient that did not get the message or may not have, in file order."""
        yield from self._db.execute(
            "SELECT recipient, state, message_id, delivery, failure_code, failure_title, error "
            "FROM recipients WHERE delivery = 'failed' "
            "OR (delivery IS NULL AND state IN ('failed', 'ambiguous', 'invalid')) ORDER BY idx"
        )

    def unapplied_events(self) -> int:
        """How many stored status events match no recipient of this journal (yet)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM webhook_events WHERE applied = 0 AND rank IS NOT NULL"
        ).fetchone()
        return int(row[0])

    def event_count(self) -> int:
        """How many distinct webhook events are stored."""
        return int(self._db.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0])
