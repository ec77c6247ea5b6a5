"""The Postgres journal's tables, created or upgraded by `ensure_schema`.

`SCHEMA` is version 1 as it was first released; `UPGRADES[n]` brings a database from n - 1 to
n, so a new database and an upgraded one end up alike. Version 2 adds delivery truth: each
recipient's message id (generated from the send's stored answer, so every writer fills it),
`gupshup_deliveries` (the furthest webhook status per recipient: the receiver never locks the
rows the workers write) and `gupshup_webhook_events` (every event once, by its unique key).
"""

from __future__ import annotations

from typing import Any

import psycopg

SCHEMA_VERSION = 2
#: Serialises schema creation between concurrent `--enqueue` runs (any constant key will do).
SCHEMA_LOCK = 0x67757073  # "gups"


class SchemaTooNewError(RuntimeError):
    """The database's journal schema is newer than this version knows: upgrade gupshup-async
    (no retry helps; nothing was changed)."""


SCHEMA = [
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

UPGRADES: dict[int, list[str]] = {
    2: [
        # The tag makes a send's callback data (`gp:<campaign>:<tag>:<row>`) this database's.
        "ALTER TABLE gupshup_campaigns ADD COLUMN IF NOT EXISTS callback_tag TEXT NOT NULL "
        "DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 12)",
        "ALTER TABLE gupshup_recipients ADD COLUMN IF NOT EXISTS message_id TEXT "
        "GENERATED ALWAYS AS ((result::jsonb) #>> '{messages,0,id}') STORED",
        "CREATE INDEX IF NOT EXISTS gupshup_recipients_message_id "
        "ON gupshup_recipients (message_id) WHERE message_id IS NOT NULL",
        """CREATE TABLE IF NOT EXISTS gupshup_deliveries (
            campaign      BIGINT NOT NULL,
            idx           INTEGER NOT NULL,
            message_id    TEXT,
            delivery      TEXT NOT NULL,
            delivery_rank SMALLINT NOT NULL,
            delivery_at   DOUBLE PRECISION,
            failure_code  BIGINT,
            failure_title TEXT,
            PRIMARY KEY (campaign, idx)
        )""",
        "CREATE INDEX IF NOT EXISTS gupshup_deliveries_message_id "
        "ON gupshup_deliveries (message_id) WHERE message_id IS NOT NULL",
        """CREATE TABLE IF NOT EXISTS gupshup_webhook_events (
            key        TEXT PRIMARY KEY,
            kind       TEXT NOT NULL,
            message_id TEXT,
            status     TEXT,
            rank       SMALLINT,
            at         DOUBLE PRECISION,
            campaign   BIGINT,
            row_hint   INTEGER,
            tag        TEXT,
            code       BIGINT,
            title      TEXT,
            raw        TEXT NOT NULL,
            received   TIMESTAMPTZ NOT NULL DEFAULT now(),
            applied    BOOLEAN NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS gupshup_webhook_events_unapplied "
        "ON gupshup_webhook_events (message_id) WHERE NOT applied AND rank IS NOT NULL",
    ],
}


async def ensure_schema(db: psycopg.AsyncConnection[Any]) -> None:
    """Create the tables, or upgrade them to `SCHEMA_VERSION`; safe to run concurrently.

    `db` is in autocommit mode: this is one transaction, under an advisory lock.
    """
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for statement in SCHEMA:
            await db.execute(statement)
        cursor = await db.execute("SELECT max(version) FROM gupshup_schema")
        row = await cursor.fetchone()
        version = row[0] if row and row[0] is not None else 0
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"the database's journal schema is version {version}, newer than this "
                f"gupshup-async's {SCHEMA_VERSION}: upgrade gupshup-async"
            )
        if version == SCHEMA_VERSION:
            return
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in UPGRADES.get(step, []):
                await db.execute(statement)
        await db.execute("INSERT INTO gupshup_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
