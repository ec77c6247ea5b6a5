"""Grouped commits for the Postgres journal: one transaction per event-loop turn, all campaigns.

Every `sending` mark and final state queued during one loop turn (and while the previous commit
is on the wire) shares one transaction on the writer connection. A mark queued under a lease
commits only while that lease is held: the transaction first locks the workers' lease rows
(`FOR SHARE`, so a takeover waits for it) and keeps the marks of apps whose lease expired out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .._recipients import mask_recipient


class LeaseLostError(RuntimeError):
    """This worker no longer holds the app's lease: nothing more may be sent for it."""


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


class GroupCommits:
    """The write path of a `PostgresStore`; `commits` counts the transactions made."""

    def __init__(self, db: psycopg.AsyncConnection[Any]) -> None:
        self._db = db
        self._open: _Group | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self.commits = 0

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
        db = self._db
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
