"""The campaign journal in PostgreSQL: many campaigns for many apps, shared by worker processes.

Tables (created or upgraded by `PostgresStore.ensure_schema`, which `campaign --enqueue`, the
workers and `webhooks serve` run):

- `gupshup_campaigns`: one row per campaign with everything a worker needs: app id, rate,
  burst, concurrency, timeout, retries, base URL, the *name* of the environment variable that
  holds the token (never the token), the message in the API's JSON shape, and a status
  (`ready`, `done`, `stopped`).
- `gupshup_recipients`: keyed by (campaign, idx): the same number in two campaigns is two
  recipients. States as in SQLite: pending -> sending -> sent | failed | ambiguous, plus
  invalid and duplicate, decided when the campaign is enqueued.
- `gupshup_app_leases`: which worker sends for an app, and until when; `gupshup_workers`: the
  live workers, for a fair share of the apps (`journal/leases.py`).
- `gupshup_deliveries` and `gupshup_webhook_events`: delivery truth from the status webhooks
  (`_pg_delivery`); each send carries `gp:<campaign>:<tag>:<row>` as its callback data.

The rules are SQLite's: `mark_sending` returns once its mark is committed; every mark and final
state queued during one event-loop turn (and while the previous commit is on the wire) shares
one transaction on the store's writer connection, whatever campaign it belongs to
(`_pg_commits`). A mark made under a lease commits only while the lease is held (checked with
the lease row locked, in the same transaction), so a worker that lost its app can never mark,
hence never send. The tables' definitions are in `_pg_schema`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from .._bulk import BulkResult, Outcome
from .._recipients import normalize_recipient
from ._interface import DUPLICATE_ERROR, FINAL_STATES, INTERRUPTED_ERROR, final_record
from ._pg_commits import GroupCommits, LeaseLostError
from ._pg_failures import permanent_failure
from ._pg_schema import SCHEMA_LOCK, SCHEMA_VERSION, SchemaTooNewError, ensure_schema

__all__ = [
    "SCHEMA_VERSION",
    "CampaignNotFoundError",
    "CampaignSpec",
    "LeaseLostError",
    "PostgresJournal",
    "PostgresStore",
    "SchemaTooNewError",
    "permanent_failure",
]


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


def _classify(idx: int, to: str) -> tuple[int, str, str | None, str, str | None]:
    try:
        digits = normalize_recipient(to)
    except ValueError as invalid:
        return (idx, to, None, "invalid", str(invalid))
    return (idx, to, digits, "pending", None)


class PostgresStore:
    """Connections to one database: a writer for the grouped commits, a reader for queries."""

    def __init__(self, writer: psycopg.AsyncConnection[Any], reader: psycopg.AsyncConnection[Any]):
        self._writer = writer
        self._reader = reader
        self._group_commits = GroupCommits(writer)

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
        await ensure_schema(self._reader)

    async def enqueue(self, spec: CampaignSpec, recipients: Iterable[str]) -> tuple[int, bool]:
        """Store a campaign and all its recipients in one transaction; (id, True when new).

        The same app, message and recipients file already enqueued gives that campaign's id
        back and stores nothing, whatever its status: running `--enqueue` twice sends once,
        even after the first campaign is done. A stopped one is made ready again: it resumes
        with its pending recipients (say once its token is fixed), nothing resent.
        """
        async with self._reader.transaction():
            await self._reader.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            cursor = await self._reader.execute(
                "SELECT id FROM gupshup_campaigns WHERE app_id = %s AND message_sha256 = %s "
                "AND recipients_sha256 = %s ORDER BY id LIMIT 1",
                (spec.app_id, spec.message_sha256, spec.recipients_sha256),
            )
            existing = await cursor.fetchone()
            if existing is not None:
                await self._reader.execute(
                    "UPDATE gupshup_campaigns SET status = 'ready', stopped_by = NULL, "
                    "finished = NULL WHERE id = %s AND status = 'stopped'",
                    (existing[0],),
                )
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
    def commits(self) -> int:
        """Group transactions made so far (the write rate a deployment must carry)."""
        return self._group_commits.commits

    async def mark(self, campaign: int, app_id: str, worker: str | None, digits: str) -> None:
        """Queue a `sending` mark and wait for its commit; raise if it did not commit."""
        await self._group_commits.mark(campaign, app_id, worker, digits)

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
        self._group_commits.queue_final(campaign, digits, state, error, code, result)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed; raise the failure if one was not."""
        await self._group_commits.flush()

    @property
    def reader(self) -> psycopg.AsyncConnection[Any]:
        """The connection for queries outside the group commits (reports, leases in tests)."""
        return self._reader


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
        #: Digits -> row of the recipients `pending()` handed out and no send has tagged yet.
        self._rows: dict[str, int] = {}

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
        record = final_record(outcome)
        if record is None or outcome.digits is None:
            return
        state, error, result = record
        self.store.queue_final(self.campaign, outcome.digits, state, error, outcome.code, result)

    def unmark(self, digits: str) -> None:
        """Put a marked recipient back to pending: its send was surely not made (committed
        with the next group; a new owner that already settled it keeps it ambiguous)."""
        self.store.queue_final(self.campaign, digits, "pending", None, None, None)

    async def flush(self) -> None:
        """Wait until every queued mark and final state is committed."""
        await self.store.flush()

    async def settle_interrupted(self, *, resend_ambiguous: bool) -> int:
        """Turn `sending` rows of a dead or displaced run into `ambiguous` (or back to pending
        when `resend_ambiguous`, with old ambiguous rows too). Returns the count.

        With a `worker`, only while it holds the app's lease (checked with the row locked, as
        a mark is): a worker that lost the app must not settle its new owner's sends.
        """
        # One statement (the reader is shared by concurrent tasks: no transaction block).
        settle = (
            "state = 'pending', error = NULL WHERE r.campaign = %(c)s "
            "AND r.state IN ('sending', 'ambiguous')"
            if resend_ambiguous
            else "state = 'ambiguous', error = %(e)s WHERE r.campaign = %(c)s "
            "AND r.state = 'sending'"
        )
        cursor = await self.store.reader.execute(
            "WITH held AS (SELECT count(*) AS n FROM (SELECT 1 FROM gupshup_app_leases "
            "  WHERE app_id = %(a)s AND worker = %(w)s AND expires > clock_timestamp() "
            "  FOR SHARE) AS l), "
            f"settled AS (UPDATE gupshup_recipients AS r SET {settle} "
            "  AND (%(w)s::text IS NULL OR (SELECT n FROM held) > 0) RETURNING 1) "
            "SELECT %(w)s::text IS NULL OR (SELECT n FROM held) > 0, "
            "(SELECT count(*) FROM settled)",
            {"a": self.app_id, "w": self.worker, "c": self.campaign, "e": INTERRUPTED_ERROR},
        )
        row = await cursor.fetchone()
        assert row is not None
        if not row[0]:
            raise LeaseLostError(f"this worker no longer holds app {self.app_id}'s lease")
        return int(row[1])

    async def pending(self, chunk: int = 1_000) -> AsyncIterator[str]:
        """The recipients still to send, in file order, read in chunks (bounded memory)."""
        last = -1
        while True:
            cursor = await self.store.reader.execute(
                "SELECT idx, recipient, digits FROM gupshup_recipients "
                "WHERE campaign = %s AND state = 'pending' AND idx > %s ORDER BY idx LIMIT %s",
                (self.campaign, last, chunk),
            )
            rows = await cursor.fetchall()
            if not rows:
                return
            for idx, recipient, digits in rows:
                last = idx
                self._rows[digits] = idx
                yield recipient

    async def callback_tag(self) -> str:
        """The campaign's random callback tag (made when it was enqueued)."""
        cursor = await self.store.reader.execute(
            "SELECT callback_tag FROM gupshup_campaigns WHERE id = %s", (self.campaign,)
        )
        row = await cursor.fetchone()
        if row is None:
            raise CampaignNotFoundError(f"no campaign {self.campaign} in this database")
        return str(row[0])

    def take_row(self, recipient: str) -> int | None:
        """The row of a recipient `pending()` handed out, once (for its send's callback key)."""
        try:
            return self._rows.pop(normalize_recipient(recipient), None)
        except ValueError:
            return None

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
