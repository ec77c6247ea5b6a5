"""The SQLite journal's delivery half: webhook events stored once, statuses moved forward.

Per recipient the journal keeps the message id (the send's `gs_id`), the furthest delivery
status with its rank and time, and a failure's code and title. Every webhook event is stored
in `webhook_events` under a unique key (message id + status, or the inbound wamid), so a
repeated delivery is recognised and applied once, and the receiver can acknowledge after the
commit. An event whose message is not known yet (its send's answer is still in flight) stays
`applied = 0` until `apply_unmatched` finds its recipient.

The message id is filled from the send's stored answer by a trigger, so the sending path
writes nothing more than before. What a rank means (and what `failed` after `delivered`
means) is decided in `gupshup_async.webhooks.reconcile`; here a status only moves to a
higher rank.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._recipients import normalize_recipient

_DELIVERY_COLUMNS = (
    ("message_id", "TEXT"),
    ("delivery", "TEXT"),
    ("delivery_rank", "INTEGER"),
    ("delivery_at", "REAL"),
    ("failure_code", "INTEGER"),
    ("failure_title", "TEXT"),
)

_DELIVERY_SCHEMA = (
    "CREATE INDEX IF NOT EXISTS recipients_message_id ON recipients (message_id)",
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


@dataclass(frozen=True, slots=True)
class EventRow:
    """One webhook event as stored: `key` is unique; status events carry a `rank`.

    `row_hint` is the recipient's row when the event names it (its callback data).
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


class DeliveryRecords:
    """Mixed into `Journal`: the delivery columns, the events table and the funnel queries."""

    _db: sqlite3.Connection
    _row_of: dict[str, int]

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

    def row_of(self, recipient: str) -> int | None:
        """The journal row of a recipient `pending()` handed out (for its callback key)."""
        try:
            return self._row_of.get(normalize_recipient(recipient))
        except ValueError:
            return None

    def store_events(self, rows: Sequence[EventRow]) -> list[bool]:
        """Store the events and apply the new statuses, in one transaction.

        Returns, per row, whether it was new (False: a repeated delivery, applied before).
        The answer may be acknowledged once this returns: the events are committed.
        """
        fresh: list[bool] = []
        now = time.time()
        with self._transaction():
            for row in rows:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO webhook_events (key, kind, message_id, status, rank, "
                    "at, row_hint, code, title, raw, received) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        row.key,
                        row.kind,
                        row.message_id,
                        row.status,
                        row.rank,
                        row.at,
                        row.row_hint,
                        row.code,
                        row.title,
                        row.raw,
                        now,
                    ),
                )
                new = cursor.rowcount == 1
                fresh.append(new)
                if new and row.rank is not None:
                    self._apply(cursor.lastrowid, row)
        return fresh

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

    def _apply(self, rowid: int | None, row: EventRow) -> None:
        idx: int | None = None
        if row.row_hint is not None:
            hit = self._db.execute(
                "SELECT idx FROM recipients WHERE idx = ? "
                "AND (message_id IS NULL OR message_id = ?)",
                (row.row_hint, row.message_id),
            ).fetchone()
            idx = hit[0] if hit else None
        if idx is None and row.message_id is not None:
            hit = self._db.execute(
                "SELECT idx FROM recipients WHERE message_id = ?", (row.message_id,)
            ).fetchone()
            idx = hit[0] if hit else None
        if idx is None:
            return  # not known yet: apply_unmatched will find it
        self._move(idx, row.message_id, row.status, row.rank, row.at, row.code, row.title)
        self._db.execute("UPDATE webhook_events SET applied = 1 WHERE rowid = ?", (rowid,))

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
        self._db.execute(
            "UPDATE recipients SET message_id = COALESCE(message_id, ?), delivery = ?, "
            "delivery_rank = ?, delivery_at = ?, failure_code = ?, failure_title = ? "
            "WHERE idx = ? AND COALESCE(delivery_rank, 0) < ?",
            (message_id, status, rank, at, code, title, idx, rank),
        )

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
