"""The Postgres journal's delivery half: webhook events stored once, statuses moved forward.

The same truth as SQLite's (`_sqlite_delivery`, rules in `_delivery_rules`), for campaigns the
workers send, with any number of receivers in any number of processes:

- An event is stored with `INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key`: of two
  receivers storing the same event at once, the second waits for the first's commit and finds
  it there, so exactly one of them calls it new and applies it.
- A recipient's furthest status lives in `gupshup_deliveries`, written with an upsert whose
  `WHERE` only lets a higher rank in (checked on the row as it is when written). Receivers
  never lock `gupshup_recipients`, the rows the workers' grouped commits write, so a webhook
  can never make a worker's commit wait or deadlock. Rows are written in key order, so two
  receivers' batches cannot deadlock each other either.
- An event whose recipient is not known yet (its send's answer is still in flight) stays
  `applied = false` until `apply_unmatched` claims it (`FOR UPDATE SKIP LOCKED`: one claimer).

The recipient's message id is a column generated from the send's stored answer, so the
workers' write path is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from ._delivery_rules import FORWARD_ONLY, EventRow, first_of_each_key, furthest, match_targets
from ._pg_schema import ensure_schema

#: (campaign, idx): a recipient of the Postgres journal.
Recipient = tuple[int, int]
_BIGINT = 2**63

_INSERT_EVENTS = (
    "INSERT INTO gupshup_webhook_events (key, kind, message_id, status, rank, at, campaign, "
    "row_hint, tag, code, title, raw, applied) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::smallint[], "
    "%s::float8[], %s::bigint[], %s::int[], %s::text[], %s::bigint[], %s::text[], %s::text[], "
    "%s::bool[]) ORDER BY 1 "
    "ON CONFLICT (key) DO NOTHING RETURNING key"
)
_MOVE_FORWARD = (
    "INSERT INTO gupshup_deliveries AS d (campaign, idx, message_id, delivery, delivery_rank, "
    "delivery_at, failure_code, failure_title) "
    "SELECT * FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::smallint[], "
    "%s::float8[], %s::bigint[], %s::text[]) ORDER BY 1, 2 "
    "ON CONFLICT (campaign, idx) DO UPDATE SET "
    "message_id = COALESCE(d.message_id, excluded.message_id), delivery = excluded.delivery, "
    "delivery_rank = excluded.delivery_rank, delivery_at = excluded.delivery_at, "
    "failure_code = excluded.failure_code, failure_title = excluded.failure_title "
    "WHERE " + FORWARD_ONLY.format(current="d.delivery_rank", rank="excluded.delivery_rank")
)
#: The recipients a message id names: from the send's answer, or from an earlier webhook.
_BY_MESSAGE_ID = (
    "SELECT message_id, campaign, idx FROM gupshup_recipients WHERE message_id = ANY(%(ids)s) "
    "UNION ALL "
    "SELECT message_id, campaign, idx FROM gupshup_deliveries WHERE message_id = ANY(%(ids)s)"
)
_CLAIM_UNMATCHED = (
    "WITH matched AS (SELECT e.key FROM gupshup_webhook_events AS e "
    "  WHERE NOT e.applied AND e.rank IS NOT NULL AND ("
    "    EXISTS (SELECT 1 FROM gupshup_recipients AS r WHERE r.message_id = e.message_id) OR "
    "    EXISTS (SELECT 1 FROM gupshup_deliveries AS d WHERE d.message_id = e.message_id)) "
    "  ORDER BY e.key FOR UPDATE OF e SKIP LOCKED) "
    "UPDATE gupshup_webhook_events AS e SET applied = true FROM matched WHERE e.key = matched.key "
    "RETURNING e.key, e.kind, e.raw, e.message_id, e.status, e.rank, e.at, e.code, e.title"
)


def _text(value: str | None) -> str | None:
    """`value` as Postgres text can hold it (no NUL): a stray byte must not refuse a batch."""
    return value.replace("\x00", "\ufffd") if value is not None else None


def _bigint(value: int | None) -> int | None:
    return value if value is not None and -_BIGINT <= value < _BIGINT else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class PostgresDelivery:
    """Webhook events and delivery statuses in a Postgres journal, on the connection `db`
    (autocommit: each method is one transaction)."""

    def __init__(self, db: psycopg.AsyncConnection[Any]) -> None:
        self._db = db

    def __repr__(self) -> str:
        return "PostgresDelivery()"  # the connection's URL can hold a password

    async def store_events(self, rows: Sequence[EventRow]) -> list[bool]:
        """Store the events and move the new statuses forward, in one transaction.

        Returns, per row, whether it was new (False: stored before, by this receiver or
        another; or earlier in `rows`). Once this returns, the events are committed.
        """
        unique, first = first_of_each_key(rows)
        unique = [_clean(row) for row in unique]
        async with self._db.transaction():
            targets = await self._targets([row for row in unique if row.rank is not None])
            cursor = await self._db.execute(
                _INSERT_EVENTS,
                [
                    [row.key for row in unique],
                    [row.kind for row in unique],
                    [row.message_id for row in unique],
                    [row.status for row in unique],
                    [row.rank for row in unique],
                    [row.at for row in unique],
                    [row.campaign for row in unique],
                    [row.row_hint for row in unique],
                    [row.tag for row in unique],
                    [row.code for row in unique],
                    [row.title for row in unique],
                    [row.raw for row in unique],
                    [row.key in targets for row in unique],
                ],
            )
            inserted = {key for (key,) in await cursor.fetchall()}
            await self._move([row for row in unique if row.key in inserted], targets)
        keys = [_text(row.key) for row in rows]
        return [is_first and key in inserted for key, is_first in zip(keys, first, strict=True)]

    async def _targets(self, rows: list[EventRow]) -> dict[str, Recipient]:
        hints = sorted({hint for row in rows if (hint := _postgres_hint(row)) is not None})
        hinted: dict[tuple[int, str, int], tuple[Recipient, str | None]] = {}
        if hints:
            campaigns, tags, idxs = (list(column) for column in zip(*hints, strict=True))
            cursor = await self._db.execute(
                "SELECT h.campaign, h.tag, h.idx, COALESCE(r.message_id, d.message_id) "
                "FROM unnest(%s::bigint[], %s::text[], %s::int[]) AS h (campaign, tag, idx) "
                "JOIN gupshup_campaigns AS c ON c.id = h.campaign AND c.callback_tag = h.tag "
                "JOIN gupshup_recipients AS r ON r.campaign = h.campaign AND r.idx = h.idx "
                "LEFT JOIN gupshup_deliveries AS d ON d.campaign = h.campaign AND d.idx = h.idx",
                (campaigns, tags, idxs),
            )
            for campaign, tag, idx, message_id in await cursor.fetchall():
                hinted[(campaign, tag, idx)] = ((campaign, idx), message_id)
        ids = sorted({row.message_id for row in rows if row.message_id is not None})
        by_id = await self._by_message_id(ids)
        return match_targets(rows, _postgres_hint, hinted, by_id)

    async def _by_message_id(self, ids: list[str]) -> dict[str, Recipient]:
        if not ids:
            return {}
        cursor = await self._db.execute(_BY_MESSAGE_ID, {"ids": ids})
        found: dict[str, Recipient] = {}
        for message_id, campaign, idx in await cursor.fetchall():
            found.setdefault(message_id, (campaign, idx))
        return found

    async def _move(self, rows: list[EventRow], targets: dict[str, Recipient]) -> None:
        moves = sorted(furthest(rows, targets), key=lambda move: move[0])
        if not moves:
            return
        await self._db.execute(
            _MOVE_FORWARD,
            [
                [campaign for (campaign, _), _ in moves],
                [idx for (_, idx), _ in moves],
                [row.message_id for _, row in moves],
                [row.status for _, row in moves],
                [row.rank for _, row in moves],
                [row.at for _, row in moves],
                [row.code for _, row in moves],
                [row.title for _, row in moves],
            ],
        )

    async def apply_unmatched(self) -> int:
        """Apply stored statuses whose recipient is now known; returns how many were applied
        (by this call: another receiver's concurrent call skips the ones this one claims)."""
        async with self._db.transaction():
            cursor = await self._db.execute(_CLAIM_UNMATCHED)
            claimed = [
                EventRow(key, kind, raw, message_id, status, rank, at, code=code, title=title)
                for key, kind, raw, message_id, status, rank, at, code, title in (
                    await cursor.fetchall()
                )
            ]
            ids = sorted({row.message_id for row in claimed if row.message_id is not None})
            by_id = await self._by_message_id(ids)
            targets = {
                row.key: by_id[row.message_id]
                for row in claimed
                if row.message_id is not None and row.message_id in by_id
            }
            await self._move(claimed, targets)
        return len(claimed)

    # ------------------------------------------------------------ reading

    async def has_delivery_tables(self) -> bool:
        """Whether the database's schema holds delivery truth (version 2 or later)."""
        cursor = await self._db.execute("SELECT to_regclass('gupshup_deliveries') IS NOT NULL")
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def delivery_counts(
        self, campaign: int | None = None
    ) -> dict[int, list[tuple[str, str | None, int | None, int]]]:
        """{campaign: [(state, delivery, failure code, count)]}: the funnel's raw material."""
        cursor = await self._db.execute(
            "SELECT r.campaign, r.state, d.delivery, d.failure_code, count(*) "
            "FROM gupshup_recipients AS r LEFT JOIN gupshup_deliveries AS d "
            "ON d.campaign = r.campaign AND d.idx = r.idx "
            "WHERE %(c)s::bigint IS NULL OR r.campaign = %(c)s::bigint "
            "GROUP BY r.campaign, r.state, d.delivery, d.failure_code",
            {"c": campaign},
        )
        groups: dict[int, list[tuple[str, str | None, int | None, int]]] = {}
        for owner, state, delivery, code, count in await cursor.fetchall():
            groups.setdefault(int(owner), []).append((state, delivery, code, int(count)))
        return groups

    async def delivery_failures(self, campaign: int | None = None) -> list[tuple[Any, ...]]:
        """(campaign, recipient, state, message_id, delivery, failure_code, failure_title,
        error) of every recipient that did not get the message or may not have, in order."""
        cursor = await self._db.execute(
            "SELECT r.campaign, r.recipient, r.state, COALESCE(r.message_id, d.message_id), "
            "d.delivery, d.failure_code, d.failure_title, r.error "
            "FROM gupshup_recipients AS r LEFT JOIN gupshup_deliveries AS d "
            "ON d.campaign = r.campaign AND d.idx = r.idx "
            "WHERE (%(c)s::bigint IS NULL OR r.campaign = %(c)s::bigint) "
            "AND (d.delivery = 'failed' "
            "OR (d.delivery IS NULL AND r.state IN ('failed', 'ambiguous', 'invalid'))) "
            "ORDER BY r.campaign, r.idx",
            {"c": campaign},
        )
        return list(await cursor.fetchall())

    async def unapplied_events(self) -> int:
        """How many stored status events match no recipient of this database (yet)."""
        cursor = await self._db.execute(
            "SELECT count(*) FROM gupshup_webhook_events WHERE NOT applied AND rank IS NOT NULL"
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def event_count(self) -> int:
        """How many distinct webhook events are stored."""
        cursor = await self._db.execute("SELECT count(*) FROM gupshup_webhook_events")
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


def _postgres_hint(row: EventRow) -> tuple[int, str, int] | None:
    if row.campaign is None or row.tag is None or row.row_hint is None:
        return None
    return row.campaign, row.tag, row.row_hint


def _clean(row: EventRow) -> EventRow:
    """`row` with what Postgres would refuse (NUL in text, out-of-range numbers) made safe."""
    return EventRow(
        key=_text(row.key) or "",
        kind=row.kind,
        raw=_text(row.raw) or "",
        message_id=_text(row.message_id),
        status=_text(row.status),
        rank=row.rank,
        at=_finite(row.at),
        row_hint=row.row_hint,
        code=_bigint(row.code),
        title=_text(row.title),
        campaign=row.campaign,
        tag=_text(row.tag),
    )


def safe_url(url: str) -> str:
    """`url` with its password (if any) shown as `***`: for logs, reprs and messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "postgresql://(unreadable URL, not shown)"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class DeliveryDatabase:
    """A webhook receiver's handle on a Postgres journal, on a connection of its own.

    Connected when first used (creating or upgrading the schema: a receiver may start before
    any campaign is enqueued), and again after the connection broke: a receiver outlives a
    database restart, answering 503 (Gupshup retries) meanwhile. One caller at a time.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._db: psycopg.AsyncConnection[Any] | None = None

    def __repr__(self) -> str:
        return f"DeliveryDatabase({safe_url(self._url)!r})"

    async def delivery(self) -> PostgresDelivery:
        """The delivery store on a live connection (connecting if needed)."""
        if self._db is None or self._db.closed or self._db.broken:
            if self._db is not None:
                await self._db.close()
            self._db = None
            try:
                db = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            except psycopg.Error as failed:
                password = urlsplit(self._url).password if "://" in self._url else None
                text = str(failed).replace(password, "***") if password else str(failed)
                raise psycopg.OperationalError(
                    f"cannot connect to {safe_url(self._url)}: {text}"
                ) from None
            try:
                await ensure_schema(db)
            except BaseException:
                await db.close()
                raise
            self._db = db
        return PostgresDelivery(self._db)

    @property
    def connected(self) -> bool:
        """Whether a connection is open (it may still turn out broken on its next use)."""
        return self._db is not None and not self._db.closed

    async def aclose(self) -> None:
        """Close the connection (every write here is committed as it is made)."""
        if self._db is not None:
            await self._db.close()
            self._db = None
