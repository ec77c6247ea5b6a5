"""Worker: runs the campaigns stored in Postgres, one app at a time per app, many apps at once.

A worker claims apps (see `journal.leases`), hosts each in a task of its own with its own
client and `BulkSender` (a bucket per app: the app's rate holds with no cross-process limiter,
since exactly one worker sends for an app), and runs the app's ready campaigns oldest first.
Taking an app over, it first turns the previous owner's `sending` rows into `ambiguous`: they
may have gone out. A lost lease stops that app's sends at the next mark; a failed database
connection ends the session (every app stops; its leases expire and are taken over).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import psycopg
from aiolimiter import AsyncLimiter

from ._bulk import BulkSender, Outcome
from ._client import AsyncGupshupClient
from ._errors import AuthenticationError, GupshupError, PermissionDeniedError
from ._messages import Message, message_from_wire
from ._metronome import DEFAULT_TICK, Metronome, TickedLimiter
from .journal.leases import DEFAULT_LEASE_SECONDS, Leases
from .journal.postgres import CampaignSpec, LeaseLostError, PostgresJournal, PostgresStore
from .webhooks.reconcile import postgres_callback_key

logger = logging.getLogger("gupshup_async.worker")

#: Answers that mean no recipient of the campaign can be sent to: it stops, the rest pending.
FATAL_ERRORS = (AuthenticationError, PermissionDeniedError)
#: Longest pause between two looks for free apps (a dead worker's apps wait its lease plus this).
MAX_CLAIM_INTERVAL = 1.0


class Worker:
    """Runs stored campaigns until stopped; `lease_seconds` bounds a dead worker's apps' wait.

    `max_apps` caps the apps hosted at once (None: no cap); `environ` is where tokens are read
    (by the variable name each campaign stores); `on_outcome(app_id, outcome)` sees every
    recipient's result (benchmarks, tests). `tick` (seconds, None: off) makes every hosted
    app's bucket wait on one shared `Metronome`: paced apps wake the loop together.
    `clock` (monotonic seconds) times the leases as this worker sees them: a send waits for
    nothing once its app's lease ran out by it (a frozen process, a hung renewal).
    `allow_insecure_http` lets campaigns send their tokens over plain http to a host that is
    not loopback (without it such a campaign is stopped, naming why).
    """

    def __init__(
        self,
        url: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_apps: int | None = None,
        name: str | None = None,
        environ: Mapping[str, str] = os.environ,
        on_outcome: Callable[[str, Outcome], None] | None = None,
        tick: float | None = DEFAULT_TICK,
        clock: Callable[[], float] = time.monotonic,
        allow_insecure_http: bool = False,
    ) -> None:
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        if max_apps is not None and max_apps < 1:
            raise ValueError(f"max_apps must be >= 1, got {max_apps}")
        self.url = url
        self.lease_seconds = lease_seconds
        self.max_apps = max_apps
        self.name = name or f"worker-{uuid.uuid4().hex[:8]}"
        self.environ = environ
        self.on_outcome = on_outcome
        self.tick = tick
        self.clock = clock
        self.allow_insecure_http = allow_insecure_http
        self.sent = 0
        self.commits = 0

    async def run(self, stop: asyncio.Event | None = None, *, exit_when_idle: bool = False) -> None:
        """One session: connect, then claim, renew and send until `stop` is set (or, with
        `exit_when_idle`, until no campaign is ready). Raises when the database fails."""
        stop = stop or asyncio.Event()
        session = f"{self.name}-{uuid.uuid4().hex[:6]}"  # a fresh holder name per session
        # Named after the session, so an operator (or a test) can find its connections.
        url = psycopg.conninfo.make_conninfo(self.url, application_name=session[:63])
        store = await PostgresStore.connect(url)
        try:
            await store.ensure_schema()
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as lease_db:
                leases = Leases(lease_db, session, lease_seconds=self.lease_seconds)
                await _Session(self, store, leases).serve(stop, exit_when_idle)
        finally:
            self.commits += store.commits
            with contextlib.suppress(Exception):
                await store.aclose()


def runnable_message(spec: CampaignSpec) -> Message:
    """The campaign's message, once its stored settings are ones a worker can send with.

    A row written by hand or by another version can hold anything; `ValueError` names the
    field, so the worker stops that campaign instead of failing (every worker in turn).
    """
    if spec.rate is not None and not (spec.rate > 0 and math.isfinite(spec.rate)):
        raise ValueError(f"rate must be a positive number of messages per second, got {spec.rate}")
    if spec.burst is not None and spec.burst < 1:
        raise ValueError(f"burst must be >= 1, got {spec.burst}")
    if spec.concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {spec.concurrency}")
    if spec.max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {spec.max_retries}")
    return message_from_wire(spec.message)


def sender_burst(spec: CampaignSpec) -> int:
    """The bucket size the campaign's `BulkSender` uses (its default: a tenth of a second)."""
    return spec.burst if spec.burst is not None else max(1, round((spec.rate or 0) / 10))


async def _bucket(
    rate: float | None, burst: int, metronome: Metronome | None
) -> AsyncLimiter | None:
    """A full bucket of `burst` at `rate` ticking on `metronome` (None: the sender makes one)."""
    if rate is None or metronome is None:
        return None
    bucket = TickedLimiter(burst, burst / rate, metronome=metronome)
    await bucket.acquire(burst)  # starts full, as the sender's own would: no burst at the start
    return bucket


async def _gated(
    mark: Callable[[str], Awaitable[None]],
    rate: float | None,
    burst: int,
    metronome: Metronome | None,
    lease: _LeaseCheck,
) -> Callable[[str], Awaitable[None]]:
    """`mark`, then a second bucket at the campaign's rate before the request goes out.

    The sender's bucket admits a send before its write-ahead mark; a Postgres commit takes a
    round trip whose length varies, so sends admitted over a while could leave together after
    a slow commit. Passing a bucket again after the mark (the same rate, half the burst) keeps
    every 1 s window at the API within `rate + burst` whatever the commit took (a waiting
    send is already marked: still at most `concurrency` ambiguous per kill).

    A mark commits only under a live lease, but the send comes later (after the gate, or
    after the process was frozen): it goes out only if the lease is still held by this
    worker's clock; else the mark is undone (surely not sent) and `LeaseLostError` stops it.
    """
    if rate is None:

        async def mark_then_check(digits: str) -> None:
            await mark(digits)
            lease.check(digits)

        return mark_then_check
    # Half the sender's burst: the other half absorbs the event loop's lag after the gate.
    size = max(1, burst // 2)
    gate: AsyncLimiter
    if metronome is not None:
        gate = TickedLimiter(size, size / rate, metronome=metronome)
    else:
        gate = AsyncLimiter(size, size / rate)
    await gate.acquire(size)  # starts full, like the sender's: no extra burst at the start

    async def mark_then_pass(digits: str) -> None:
        await mark(digits)
        await gate.acquire()
        lease.check(digits)

    return mark_then_pass


class _LeaseCheck:
    """Whether this worker still holds an app's lease by its own clock, before each send.

    The deadline is the start of the last claim or renewal that returned the app plus the
    row's lifetime: the database set the row's expiry later than that start on its own clock,
    so a send allowed here never leaves after the row expired (clocks are never compared).
    """

    def __init__(
        self,
        app_id: str,
        deadlines: dict[str, float],
        clock: Callable[[], float],
        journal: PostgresJournal,
    ) -> None:
        self.app_id = app_id
        self.deadlines = deadlines
        self.clock = clock
        self.journal = journal

    def check(self, digits: str) -> None:
        if self.clock() < self.deadlines.get(self.app_id, -math.inf):
            return
        self.journal.unmark(digits)
        raise LeaseLostError(
            f"app {self.app_id}'s lease ran out before this send (by this worker's clock): "
            "not sent, back to pending"
        )


async def _tagger(journal: PostgresJournal) -> Callable[[str], str | None]:
    """Each send's `biz_opaque_callback_data`: campaign, its tag and the recipient's row, so a
    status webhook settles the row even when the send's answer was lost."""
    tag = await journal.callback_tag()

    def tag_of(recipient: str) -> str | None:
        row = journal.take_row(recipient)
        return postgres_callback_key(journal.campaign, tag, row) if row is not None else None

    return tag_of


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class _Session:
    """One connected worker session: its apps' tasks and the claim/renew loop."""

    def __init__(self, worker: Worker, store: PostgresStore, leases: Leases) -> None:
        self.worker = worker
        self.store = store
        self.leases = leases
        self.apps: dict[str, asyncio.Task[None]] = {}
        #: When each hosted app's lease runs out by the worker's clock (`_LeaseCheck`).
        self.deadlines: dict[str, float] = {}
        self.metronome = Metronome(worker.tick) if worker.tick is not None else None

    async def serve(self, stop: asyncio.Event, exit_when_idle: bool) -> None:
        lease = self.worker.lease_seconds
        clock, ttl = self.worker.clock, self.leases.ttl
        claim_every = min(MAX_CLAIM_INTERVAL, lease / 10)
        renew_every = lease / 4
        loop = asyncio.get_running_loop()
        await self.leases.register()
        renewed = loop.time()
        # Let workers started together register first, so they share the apps from the start.
        await _wait(stop, claim_every)
        try:
            while not stop.is_set():
                self._reap()
                if loop.time() - renewed >= renew_every:
                    asked = clock()
                    held = await self.leases.renew(sorted(self.apps))
                    renewed = loop.time()
                    for app_id in held:
                        self.deadlines[app_id] = asked + ttl
                    for app_id in set(self.apps) - held:
                        task = self.apps.pop(app_id)
                        if not task.done():  # (a finished app released its lease itself)
                            logger.warning("lost the lease on app %s: stopping its sends", app_id)
                            task.cancel()
                room = (self.worker.max_apps or 1_000_000) - len(self.apps)
                asked = clock()
                for app_id in await self.leases.claim(room, held=len(self.apps)):
                    self.deadlines[app_id] = asked + ttl
                    if app_id in self.apps:
                        continue  # its lease had run out unnoticed: renewed, keep its one task
                    logger.info("took app %s", app_id)
                    self.apps[app_id] = asyncio.ensure_future(self._serve_app(app_id))
                idle = exit_when_idle and not self.apps
                if idle and not await self.store.campaigns(status="ready"):
                    return
                waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
                waits.extend(self.apps.values())
                try:
                    await asyncio.wait(waits, timeout=claim_every, return_when="FIRST_COMPLETED")
                finally:
                    waits[0].cancel()
        finally:
            await self._stop_apps()

    def _reap(self) -> None:
        for app_id, task in list(self.apps.items()):
            if task.done():
                del self.apps[app_id]
                error = None if task.cancelled() else task.exception()
                if isinstance(error, LeaseLostError):
                    logger.warning("app %s: %s", app_id, error)
                elif error is not None:
                    raise error  # the database failed: end the session

    async def _stop_apps(self) -> None:
        tasks = list(self.apps.values())
        for task in tasks:
            task.cancel()  # requests in flight finish and are recorded
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.store.flush()
        for app_id in list(self.apps):
            with contextlib.suppress(Exception):
                await self.leases.release(app_id)
        with contextlib.suppress(Exception):
            await self.leases.retire()
        self.apps.clear()

    async def _serve_app(self, app_id: str) -> None:
        while ready := await self.store.campaigns(app_id=app_id, status="ready"):
            for spec in ready:
                await self._run_campaign(spec)
        await self.leases.release(app_id)
        logger.info("app %s: no campaign left, released", app_id)

    async def _run_campaign(self, spec: CampaignSpec) -> None:
        assert spec.id is not None
        store, worker = self.store, self.worker
        journal = store.journal(spec.id, spec.app_id, worker=self.leases.worker)
        settled = await journal.settle_interrupted(resend_ambiguous=False)
        if settled:
            logger.warning("campaign %d: %d interrupted sends now ambiguous", spec.id, settled)
        token = worker.environ.get(spec.token_env)
        if not token:
            # Named: with many workers, the operator must know which one lacks it (re-running
            # the same `--enqueue` resumes the campaign once it is set).
            missing = f"${spec.token_env} is not set on worker {worker.name}"
            await store.finish(spec.id, stopped_by=missing)
            return
        try:
            message = runnable_message(spec)
            client = AsyncGupshupClient(
                spec.app_id,
                token,
                base_url=spec.base_url,
                timeout=spec.timeout,
                max_retries=spec.max_retries,
                allow_insecure_http=worker.allow_insecure_http,
            )
        except ValueError as unusable:  # (the client's checks never quote the token)
            await store.finish(spec.id, stopped_by=f"cannot run this campaign: {unusable}")
            logger.warning("campaign %d stopped: cannot run it: %s", spec.id, unusable)
            return
        fatal: list[GupshupError] = []

        def on_result(outcome: Outcome) -> None:
            if isinstance(outcome.error, FATAL_ERRORS):
                fatal.append(outcome.error)
                outcome = dataclasses.replace(outcome, status="not_sent")
            journal.record(outcome)
            if outcome.status == "sent":
                worker.sent += 1
            if worker.on_outcome is not None and outcome.status != "not_sent":
                worker.on_outcome(spec.app_id, outcome)

        async with client:
            burst = sender_burst(spec)
            sender = BulkSender(
                client,
                rate=spec.rate,
                burst=spec.burst,
                concurrency=spec.concurrency,
                limiter=await _bucket(spec.rate, burst, self.metronome),
                on_result=on_result,
                before_send=await _gated(
                    journal.mark_sending,
                    spec.rate,
                    burst,
                    self.metronome,
                    _LeaseCheck(spec.app_id, self.deadlines, worker.clock, journal),
                ),
                deduplicate=False,  # decided when the campaign was enqueued
            )
            try:
                await sender.run(
                    journal.pending(),
                    message,
                    biz_opaque_callback_data=await _tagger(journal),
                    until=lambda: bool(fatal),
                )
            finally:
                await journal.flush()
        counts = await journal.counts()
        if fatal:
            await store.finish(spec.id, stopped_by=str(fatal[0]))
        elif counts.get("pending"):
            # Every pending recipient was read in this pass, so these cannot be recorded (e.g.
            # a recipient another version normalised differently): running again would loop.
            stuck = f"{counts['pending']} recipient(s) stayed pending after a full pass"
            await store.finish(spec.id, stopped_by=f"{stuck}: left pending")
            logger.warning("campaign %d stopped: %s", spec.id, stuck)
        elif not counts.get("sending"):
            await store.finish(spec.id)
            logger.info("campaign %d done: %s", spec.id, counts)
