"""The Postgres journal's tables, created or upgraded by `PostgresStore.ensure_schema`."""

from __future__ import annotations

SCHEMA_VERSION = 1
#: Serialises schema creation between concurrent `--enqueue` runs (any constant key will do).
SCHEMA_LOCK = 0x67757073  # "gups"

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
