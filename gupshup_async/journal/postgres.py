"""The campaign journal in PostgreSQL: many campaigns for many apps, shared by worker processes.

Tables (created or upgraded by `PostgresStore.ensure_schema`, which `campaign --enqueue` runs):

- `gupshup_campaigns`: one row per campaign with everything a worker needs: app id, rate,
  burst, concurrency, timeout, retries, base URL, the *name* of the environment variable that
  holds the token (never the token), the message in the API's JSON shape, and a status
  (`ready`, `done`, `stopped`).
- `gupshup_recipients`: keyed by (campaign, idx): the same number in two campaigns is two
  recipients. States as in SQLite: pending -> sending -> sent | failed | ambiguous, plus
  invalid and duplicate, decided when the campaign is enqueued.
- `gupshup_app_leases`: which worker sends for an app, and until when; `gupshup_workers`: the
  live workers, for a fair share of the apps (`journal/leases.py`).

The rules are SQLite's: `mark_sending` returns once its mark is committed; every mark and final
state queued during one event-loop turn (and while the previous commit is on the wire) shares
one transaction on the store's writer connection, whatever campaign it belongs to. A mark made
under a lease commits only while the lease is held (checked with the lease row locked, in the
same transaction), so a worker that lost its app can never mark, hence never send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .._bulk import BulkResult, Outcome
from .._recipients import mask_recipient, normalize_recipient
from ._interface import DUPLICATE_ERROR, FINAL_STATES, INTERRUPTED_ERROR

SCHEMA_VERSION = 1
#: Serialises schema creation between concurrent `--enqueue` runs (any constant key will do).
_SCHEMA_LOCK = 0x67757073  # "gups"

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS gupshup_schema (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS gupshup_campaigns (
        id                BIGSERIAL PRIMARY KEY,
        app_id            TEXT NOT NULL,
        base_url          TEXT NOT NULL,
        token_env         TEXT NOT NULL,
        message           JSONB NOT NULL,
        rate              DOUBLE PRECISION,
        burst             INTEGER,
        concurrency       INTEGER NOT NULL,
        timeout           DOUBLE PRECISION NOT NULL,
        max_retries       INTEGER NOT NULL,
        message_sha256    TEXT NOT NULL,
        recipients_sha256 TEXT NOT NULL,
        status            TEXT NOT NULL DEFAULT 'ready',
        stopped_by        TEXT,
        created           TIMESTAMPTZ NOT NULL DEFAULT now(),
        finished          TIMESTAMPTZ
    )""",
    "CREATE INDEX IF NOT EXISTS gupshup_campaigns_ready ON gupshup_campaigns (app_id, id) "
    "WHERE status = 'ready'",
    """CREATE TABLE IF NOT EXISTS gupshup_recipients (
        campaign  BIGINT NOT NULL REFERENCES gupshup_campaigns (id),
        idx       INTEGER NOT NULL,
        recipient TEXT NOT NULL,
        digits    TEXT,
        state     TEXT NOT NULL,
        error     TEXT,
        code      BIGINT,
        result    TEXT,
        runs      INTEGER NOT NULL DEFAULT 0,
        updated   TIMESTAMPTZ,
        PRIMARY KEY (campaign, idx)
    )""",
    "CREATE INDEX IF NOT EXISTS gupshup_recipients_digits ON gupshup_recipients (campaign, digits)",
    "CREATE INDEX IF NOT EXISTS gupshup_recipients_pending ON gupshup_recipients (campaign, idx) "
    "WHERE state = 'pending'",
    """CREATE TABLE IF NOT EXISTS gupshup_app_leases (
        app_id  TEXT PRIMARY KEY,
        worker  TEXT,
        expires TIMESTAMPTZ,
        epoch   BIGINT NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS gupshup_workers (
        name    TEXT PRIMARY KEY,
        expires TIMESTAMPTZ NOT NULL
    )""",
]


class LeaseLostError(RuntimeError):
    """This worker no longer holds the app's lease: nothing more may be sent for it."""


class CampaignNotFoundError(LookupError):
    """No campaign has this id."""


@dataclass(frozen=True)
class CampaignSpec:
    """What a worker needs to run a campaign; `token_env` names the variable, never the token."""

    app_id: str
    message: Mapping[str, Any]  # the API's JSON shape, as `message_from_wire` reads it
    token_env: str
    base_url: str
    rate: float | None
    burst: int | None
    concurrency: int
    timeout: float
    max_retries: int
    message_sha256: str
    recipients_sha256: str
    id: int | None = None
    status: str = "ready"


@dataclass
class _Group:
    """The marks and final states of one commit, and who waits for it."""

    done: asyncio.Future[None]
    marks: list[tuple[int, str, str | None, str]] = field(default_factory=list)
    finals: list[tuple[int, str, str, str | None, int | None, str | None]] = field(
        default_factory=list
    )
    granted: set[tuple[int, str]] = field(default_factory=set)
    lost_apps: set[str] = field(default_factory=set)


def _classify(idx: int, to: str) -> tuple[int, str, str | None, str, str | None]:
    try:
        digits = normalize_recipient(to)
    except ValueError as invalid:
        return (idx, to, None, "invalid", str(invalid))
    return (idx, to, digits, "pending", None)


class PostgresStore:
    """Connections to one database: a writer for the grouped commits, a reader for queries.

    `commits` counts the group transactions made (the write rate a deployment must carry).
    """

    def __init__(self, writer: psycopg.AsyncConnection[Any], reader: psycopg.AsyncConnection[Any]):
        self._writer = writer
        self._reader = reader
        self._open: _Group | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self.commits = 0

    @classmethod
    async def connect(cls, url: str) -> PostgresStore:
        """Open the store's two connections to `url` (a `postgresql://` URL)."""
        writer = await psycopg.AsyncConnection.connect(url, autocommit=True)
        try:
            reader = await psycopg.AsyncConnection.connect(url, autocommit=True)
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader)

    async def aclose(self) -> None:
        """Commit what is queued (if the database still answers), then close both connections."""
        with contextlib.suppress(Exception):
            await self.flush()
        await self._writer.close()
        await self._reader.close()

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------ schema and campaigns

    async def ensure_schema(self) -> None:
        """Create the tables, or upgrade them to `SCHEMA_VERSION`; safe to run concurrently."""
        async with self._reader.transaction():
            await self._reader.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                await self._reader.execute(statement)
            cursor = await self._reader.execute("SELECT max(version) FROM gupshup_schema")
            row = await cursor.fetchone()
            version = row[0] if row else None
            if version is None:
                await self._reader.execute(
                    "INSERT INTO gupshup_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
                )
            elif version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the database's journal schema is version {version}, newer than this "
                    f"gupshup-async's {SCHEMA_VERSION}: upgrade gupshup-async"
                )

    async def enqueue(self, spec: CampaignSpec, recipients: Iterable[str]) -> tuple[int, bool]:
        """Store a campaign and all its recipients in one transaction; (id, True when new).

        The same app, message and recipients file already enqueued and not finished gives that
        campaign's id back and stores nothing: running `--enqueue` twice sends once.
        """
        async with self._reader.transaction():
            await self._reader.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            cursor = await self._reader.execute(
                "SELECT id FROM gupshup_campaigns WHERE app_id = %s AND message_sha256 = %s "
                "AND recipients_sha256 = %s AND status = 'ready' ORDER BY id LIMIT 1",
                (spec.app_id, spec.message_sha256, spec.recipients_sha256),
            )
            existing = await cursor.fetchone()
            if existing is not None:
                return int(existing[0]), False
            cursor = await self._reader.execute(
                "INSERT INTO gupshup_campaigns (app_id, base_url, token_env, message, rate, "
                "burst, concurrency, timeout, max_retries, message_sha256, recipients_sha256) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    spec.app_id,
                    spec.base_url,
                    spec.token_env,
                    json.dumps(spec.message),
                    spec.rate,
                    spec.burst,
                    spec.concurrency,
                    spec.timeout,
                    spec.max_retries,
                    spec.message_sha256,
                    spec.recipients_sha256,
                ),
            )
            row = await cursor.fetchone()
            assert row is not None
            campaign = int(row[0])
            copy_sql = (
                "COPY gupshup_recipients (campaign, idx, recipient, digits, state, error) "
                "FROM STDIN"
            )
            async with self._reader.cursor() as copying, copying.copy(copy_sql) as copy:
                for idx, to in enumerate(recipients):
                    await copy.write_row((campaign, *_classify(idx, to)))
            await self._reader.execute(
                "UPDATE gupshup_recipients AS r SET state = 'duplicate', error = %s "
                "FROM (SELECT idx, row_number() OVER (PARTITION BY digits ORDER BY idx) AS n "
                "      FROM gupshup_recipients WHERE campaign = %s AND digits IS NOT NULL) AS d "
                "WHERE r.campaign = %s AND r.idx = d.idx AND d.n > 1",
                (DUPLICATE_ERROR, campaign, campaign),
            )
        return campaign, True

    async def campaign(self, campaign: int) -> CampaignSpec:
        """The stored campaign `campaign`; raises `CampaignNotFoundError`."""
        found = await self.campaigns(ids=[campaign])
        if not found:
            raise CampaignNotFoundError(f"no campaign {campaign} in this database")
        return found[0]

    async def campaigns(
        self, *, ids: list[int] | None = None, app_id: str | None = None, status: str | None = None
    ) -> list[CampaignSpec]:
        """Stored campaigns in id order, filtered by ids, app and status when given."""
        cursor = await self._reader.execute(
            "SELECT id, app_id, message, token_env, base_url, rate, burst, concurrency, timeout, "
            "max_retries, message_sha256, recipients_sha256, status FROM gupshup_campaigns "
            "WHERE (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[])) "
            "AND (%(app)s::text IS NULL OR app_id = %(app)s::text) "
            "AND (%(status)s::text IS NULL OR status = %(status)s::text) ORDER BY id",
            {"ids": ids, "app": app_id, "status": status},
        )
        return [
            CampaignSpec(
                id=row[0],
                app_id=row[1],
                message=row[2],
                token_env=row[3],
                base_url=row[4],
                rate=row[5],
                burst=row[6],
                concurrency=row[7],
                timeout=row[8],
                max_retries=row[9],
                message_sha256=row[10],
                recipients_sha256=row[11],
                status=row[12],
            )
            for row in await cursor.fetchall()
        ]

    async def finish(self, campaign: int, *, stopped_by: str | None = None) -> None:
        """Mark a campaign done (nothing pending) or stopped (`stopped_by` says why)."""
        await self.flush()
        await self._reader.execute(
            "UPDATE gupshup_campaigns SET status = %s, stopped_by = %s, finished = now() "
            "WHERE id = %s",
            ("stopped" if stopped_by else "done", stopped_by, campaign),
        )

    async def counts(self, campaign: int | None = None) -> dict[int, dict[str, int]]:
        """{campaign: {state: count}} for one campaign or all."""
        cursor = await self._reader.execute(
            "SELECT campaign, state, count(*) FROM gupshup_recipients "
            "WHERE %(c)s::bigint IS NULL OR campaign = %(c)s::bigint GROUP BY campaign, state",
            {"c": campaign},
        )
        counts: dict[int, dict[str, int]] = {}
        for owner, state, count in await cursor.fetchall():
            counts.setdefault(int(owner), {})[state] = int(count)
        return counts

    def journal(self, campaign: int, app_id: str, *, worker: str | None = None) -> PostgresJournal:
        """The journal of one campaign; with `worker`, marks commit only under its app lease."""
        return PostgresJournal(self, campaign, app_id, worker=worker)

    @property
    def reader(self) -> psycopg.AsyncConnection[Any]:
        """The connection for queries outside the group commits (reports, leases in tests)."""
        return self._reader

    # ------------------------------------------------------------ grouped commits

    async def mark(self, campaign: int, app_id: str, worker: str | None, digits: str) -> None:
        """Queue a `sending` mark and wait for its commit; raise if it did not commit."""
        if self._failure is not None:
            raise self._failure
        group = self._group()
        group.marks.append((campaign, app_id, worker, digits))
        await asyncio.shield(group.done)
        if (campaign, digits) not in group.granted:
            if app_id in group.lost_apps:
                raise LeaseLostError(f"this worker no longer holds app {app_id}'s lease")
            raise LookupError(
                f"recipient {mask_recipient(digits)} is not pending in campaign {campaign}"
            )

    def queue_final(
        self,
        campaign: int,
        digits: str,
        state: str,
        error: str | None,
        code: int | None,
        result: str | None,
    ) -> None:
        """Queue a final state (committed with the next group)."""
        self._group().finals.append((campaign, digits, state, error, code, result))

    async def flush(self) -> None:
        """Wait until everything queued so far is committed; raise the failure if one was not."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._failure is not None:
            raise self._failure

    def _group(self) -> _Group:
        if self._open is None:
            self._open = _Group(asyncio.get_running_loop().create_future())
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.ensure_future(self._flush_groups())
        return self._open

    async def _flush_groups(self) -> None:
        # One commit in flight at a time; what arrives meanwhile forms the next group.
        while self._open is not None:
            await asyncio.sleep(0)  # the rest of this loop turn joins the group
            group, self._open = self._open, None
            if self._failure is None:
                try:
                    await self._commit(group)
                except Exception as exc:  # kept: the next mark raises it, nothing more is sent
                    self._failure = exc
            if self._failure is not None:
                group.done.set_exception(self._failure)
                group.done.exception()  # retrieved: the waiters, if any, raise it
            else:
                group.done.set_result(None)

    async def _commit(self, group: _Group) -> None:
        db = self._writer
        async with db.transaction():
            marks = group.marks
            leased = {(app, worker) for _, app, worker, _ in marks if worker is not None}
            if leased:
                apps, workers = zip(*sorted(leased), strict=True)
                cursor = await db.execute(
                    "SELECT l.app_id FROM gupshup_app_leases AS l "
                    "JOIN unnest(%s::text[], %s::text[]) AS h (app_id, worker) "
                    "ON l.app_id = h.app_id AND l.worker = h.worker "
                    "WHERE l.expires > clock_timestamp() ORDER BY l.app_id FOR SHARE OF l",
                    (list(apps), list(workers)),
                )
                held = {row[0] for row in await cursor.fetchall()}
                group.lost_apps = {app for app, _ in leased} - held
                marks = [m for m in marks if m[2] is None or m[1] in held]
            if marks:
                cursor = await db.execute(
                    "UPDATE gupshup_recipients AS r SET state = 'sending', runs = r.runs + 1, "
                    "updated = now() FROM unnest(%s::bigint[], %s::text[]) AS m (campaign, digits) "
                    "WHERE r.campaign = m.campaign AND r.digits = m.digits AND r.state = 'pending' "
                    "RETURNING r.campaign, r.digits",
                    ([m[0] for m in marks], [m[3] for m in marks]),
                )
                group.granted = {(int(c), d) for c, d in await cursor.fetchall()}
            if group.finals:
                columns = list(zip(*group.finals, strict=True))
                await db.execute(
                    "UPDATE gupshup_recipients AS r SET state = f.state, error = f.error, "
                    "code = f.code, result = f.result, updated = now() "
                    "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[], "
                    "%s::text[]) AS f (campaign, digits, state, error, code, result) "
                    "WHERE r.campaign = f.campaign AND r.digits = f.digits "
                    "AND r.state IN ('pending', 'sending')",
                    [list(column) for column in columns],
                )
        self.commits += 1


class PostgresJournal:
    """One campaign's durable state in Postgres: the same rules and states as the SQLite journal.

    Marks and final states go through the store's grouped commits; with `worker`, a mark
    commits only while that worker holds the app's lease (else `LeaseLostError`).
    """

    def __init__(
        self, store: PostgresStore, campaign: int, app_id: str, *, worker: str | None = None
    ) -> None:
        self.store = store
        self.campaign = campaign
        self.app_id = app_id
        self.worker = worker

    async def mark_sending(self, digits: str) -> None:
        """Mark `digits` as being sent; returns once the mark is committed.

        Raises when the journal cannot be written, when the lease is lost, or when the
        recipient is not pending in this campaign: a send without its mark is never made.
        """
        await self.store.mark(self.campaign, self.app_id, self.worker, digits)

    def record(self, outcome: Outcome) -> None:
        """Queue `outcome` as the recipient's state (committed with the next group).

        Cancelled before a retry ("not_sent") goes back to pending: it surely did not deliver.
        """
        if outcome.digits is None or outcome.status == "duplicate":
            return  # decided when the campaign was enqueued
        state = "pending" if outcome.status == "not_sent" else outcome.status
        if outcome.result["success"]:
            result, error = json.dumps(outcome.result["result"]), None
        else:
            result, error = None, outcome.result["error"]
        self.store.queue_final(self.campaign, outcome.digits, state, error, outcome.code, result)

    async def flush(self) -> None:
        """Wait until every queued mark and final state is committed."""
        await self.store.flush()

    async def settle_interrupted(self, *, resend_ambiguous: bool) -> int:
        """Turn `sending` rows of a dead or displaced run into `ambiguous` (or back to pending
        when `resend_ambiguous`, with old ambiguous rows too). Returns the count."""
        if resend_ambiguous:
            cursor = await self.store.reader.execute(
                "UPDATE gupshup_recipients SET state = 'pending', error = NULL "
                "WHERE campaign = %s AND state IN ('sending', 'ambiguous')",
                (self.campaign,),
            )
        else:
            cursor = await self.store.reader.execute(
                "UPDATE gupshup_recipients SET state = 'ambiguous', error = %s "
                "WHERE campaign = %s AND state = 'sending'",
                (INTERRUPTED_ERROR, self.campaign),
            )
        return cursor.rowcount

    async def pending(self, chunk: int = 1_000) -> AsyncIterator[str]:
        """The recipients still to send, in file order, read in chunks (bounded memory)."""
        last = -1
        while True:
            cursor = await self.store.reader.execute(
                "SELECT idx, recipient FROM gupshup_recipients "
                "WHERE campaign = %s AND state = 'pending' AND idx > %s ORDER BY idx LIMIT %s",
                (self.campaign, last, chunk),
            )
            rows = await cursor.fetchall()
            if not rows:
                return
            for idx, recipient in rows:
                last = idx
                yield recipient

    async def counts(self) -> dict[str, int]:
        """How many recipients are in each state."""
        return (await self.store.counts(self.campaign)).get(self.campaign, {})

    async def failures(self) -> list[tuple[str, int | None, str, int]]:
        """(state, code, error, count) for every failed, ambiguous, invalid or duplicate group."""
        cursor = await self.store.reader.execute(
            "SELECT state, code, reason, count(*) FROM ("
            "  SELECT state, code, CASE WHEN error LIKE 'recipient ''%%'"
            "  AND strpos(error, ': ') > 0 THEN substr(error, strpos(error, ': ') + 2)"
            "  ELSE error END AS reason"
            "  FROM gupshup_recipients WHERE campaign = %s"
            "  AND state IN ('failed', 'ambiguous', 'invalid', 'duplicate')) AS f "
            "GROUP BY state, code, reason ORDER BY count(*) DESC, state, reason",
            (self.campaign,),
        )
        return [(s, c, r, int(n)) for s, c, r, n in await cursor.fetchall()]

    async def results(self) -> AsyncIterator[BulkResult]:
        """Every recipient's final result, in file order, in the reference's shape."""
        last = -1
        while True:
            cursor = await self.store.reader.execute(
                "SELECT idx, recipient, state, error, result FROM gupshup_recipients "
                "WHERE campaign = %s AND state = ANY(%s) AND idx > %s ORDER BY idx LIMIT 1000",
                (self.campaign, list(FINAL_STATES), last),
            )
            rows = await cursor.fetchall()
            if not rows:
                return
            for idx, recipient, state, error, result in rows:
                last = idx
                if state == "sent":
                    yield {"recipient": recipient, "success": True, "result": json.loads(result)}
                else:
                    yield {"recipient": recipient, "success": False, "error": error}
