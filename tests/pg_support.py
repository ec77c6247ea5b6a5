"""Helpers for the tests that run against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import psycopg


async def cut_connections(database_url: str) -> int:
    """Terminate every other session on the test database and wait until they are gone.

    `pg_terminate_backend` only signals the backend: a request made at once could still be
    served by it (seen in CI on a loaded machine). Returns how many sessions were cut.
    """
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [pid for (pid,) in await cursor.fetchall()]
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,)
        )
        deadline = time.monotonic() + 30
        while True:
            cursor = await admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            )
            left = await cursor.fetchone()
            if left is not None and left[0] == 0:
                return len(pids)
            assert time.monotonic() < deadline, f"sessions {pids} still there after 30 s"
            await asyncio.sleep(0.01)
