"""App leases in Postgres: exactly one worker sends for a given app at a time.

A lease is a row of `gupshup_app_leases` (app id, worker, expiry on the database's clock).
A worker claims apps that have ready campaigns and no live lease with `FOR UPDATE SKIP LOCKED`
(two workers never wait on, nor take, the same row), at most its fair share: the apps with
ready campaigns over the live workers, rounded up, less what it holds. It renews its leases
and its entry in `gupshup_workers` every quarter of a lease period; a row expires three
quarters of a period after its renewal, so a dead worker's apps are free within one period.
It releases an app when its campaigns are done. A worker that joins later takes free apps
only, never a live worker's. A worker that dies (SIGKILL, a cut connection, a frozen machine)
stops renewing; once its leases expire, any worker claims them.

Renewing is not what keeps sends exclusive: every write-ahead mark checks, in its own
transaction and with the lease row locked, that its worker still holds an unexpired lease
(`PostgresStore._commit`). A worker past its expiry can therefore not mark, hence not send,
even if it does not know yet that it lost the app.
"""

from __future__ import annotations

from typing import Any

import psycopg

#: Seconds an app waits at most after its worker dies before another worker sends for it.
DEFAULT_LEASE_SECONDS = 30.0
#: A lease row expires this fraction of the lease period after each renewal (renewals come every
#: quarter): the rest of the period covers the claim poll and the new owner's start.
EXPIRY_FRACTION = 0.75


class Leases:
    """One worker's leases, on a connection of its own (renewals never queue behind sends)."""

    def __init__(
        self, db: psycopg.AsyncConnection[Any], worker: str, *, lease_seconds: float
    ) -> None:
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        self.db = db
        self.worker = worker
        self.lease_seconds = lease_seconds
        self.ttl = lease_seconds * EXPIRY_FRACTION

    async def register(self) -> None:
        """Say this worker is alive for one more lease period (it counts in the fair share);
        forget workers dead for over an hour (every session registers under a new name)."""
        await self.db.execute(
            "DELETE FROM gupshup_workers WHERE expires < clock_timestamp() - interval '1 hour'"
        )
        await self.db.execute(
            "INSERT INTO gupshup_workers (name, expires) "
            "VALUES (%s, clock_timestamp() + %s * interval '1 second') "
            "ON CONFLICT (name) DO UPDATE SET expires = excluded.expires",
            (self.worker, self.ttl),
        )

    async def fair_share(self) -> int:
        """Apps with ready campaigns over live workers, rounded up."""
        cursor = await self.db.execute(
            "SELECT (SELECT count(DISTINCT app_id) FROM gupshup_campaigns WHERE status = 'ready'),"
            " (SELECT count(*) FROM gupshup_workers WHERE expires > clock_timestamp())"
        )
        row = await cursor.fetchone()
        assert row is not None
        apps, workers = int(row[0]), max(1, int(row[1]))
        return -(-apps // workers)

    async def claim(self, limit: int, *, held: int = 0) -> list[str]:
        """Take up to `limit` apps that have ready campaigns and no live lease, within this
        worker's fair share given the `held` apps it has; their ids."""
        limit = min(limit, await self.fair_share() - held)
        if limit < 1:
            return []
        async with self.db.transaction():
            await self.db.execute(
                "INSERT INTO gupshup_app_leases (app_id) "
                "SELECT DISTINCT app_id FROM gupshup_campaigns WHERE status = 'ready' "
                "ON CONFLICT DO NOTHING"
            )
            cursor = await self.db.execute(
                "UPDATE gupshup_app_leases AS l SET worker = %(w)s, epoch = l.epoch + 1, "
                "expires = clock_timestamp() + %(s)s * interval '1 second' "
                "WHERE l.app_id IN ("
                "  SELECT app_id FROM gupshup_app_leases "
                "  WHERE (worker IS NULL OR expires <= clock_timestamp()) AND app_id IN "
                "    (SELECT app_id FROM gupshup_campaigns WHERE status = 'ready') "
                "  ORDER BY app_id LIMIT %(n)s FOR UPDATE SKIP LOCKED) "
                "RETURNING l.app_id",
                {"w": self.worker, "s": self.ttl, "n": limit},
            )
            return sorted(row[0] for row in await cursor.fetchall())

    async def renew(self, apps: list[str]) -> set[str]:
        """Extend this worker's entry and its leases on `apps` it still holds; returns those."""
        await self.register()
        if not apps:
            return set()
        cursor = await self.db.execute(
            "UPDATE gupshup_app_leases SET expires = clock_timestamp() + %s * interval '1 second' "
            "WHERE worker = %s AND app_id = ANY(%s) RETURNING app_id",
            (self.ttl, self.worker, apps),
        )
        return {row[0] for row in await cursor.fetchall()}

    async def retire(self) -> None:
        """Leave the live workers (this worker stops): the others' fair share grows at once."""
        await self.db.execute("DELETE FROM gupshup_workers WHERE name = %s", (self.worker,))

    async def release(self, app_id: str) -> None:
        """Give an app up (its campaigns are done, or this worker stops)."""
        await self.db.execute(
            "UPDATE gupshup_app_leases SET worker = NULL, expires = NULL "
            "WHERE app_id = %s AND worker = %s",
            (app_id, self.worker),
        )
