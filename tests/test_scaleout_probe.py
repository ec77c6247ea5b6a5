"""Issue 13 probed as an adversary and an operator: a poison campaign, recipients that never
leave pending, a malformed database URL holding a password, a report on a database without
the tables, `--enqueue` run again after the campaign ended. Each against a real Postgres."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from gupshup_async import Outcome
from gupshup_async.journal.postgres import CampaignSpec, PostgresStore
from gupshup_async.mock import MockGupshupApp, MockGupshupServer

LEASE = 2.0
TOKEN_VAR = "PROBE_TEST_TOKEN"


def _spec(app_id: str, base_url: str, *, recipients_sha256: str = "r") -> CampaignSpec:
    return CampaignSpec(app_id=app_id, message={"type": "text", "text": {"body": "x"}},
                        token_env=TOKEN_VAR, base_url=base_url, rate=None, burst=None,
                        concurrency=2, timeout=5.0, max_retries=0, message_sha256="m",
                        recipients_sha256=recipients_sha256)  # fmt: skip


def _numbers(app: int, count: int) -> list[str]:
    return [f"917{app}{i:08d}" for i in range(count)]


async def _campaigns(database_url: str) -> dict[str, tuple[str, str | None, dict[str, int]]]:
    """{app id: (status, stopped_by, {state: count})}."""
    async with await psycopg.AsyncConnection.connect(database_url) as db:
        cursor = await db.execute("SELECT id, app_id, status, stopped_by FROM gupshup_campaigns")
        rows = await cursor.fetchall()
        cursor = await db.execute(
            "SELECT campaign, state, count(*) FROM gupshup_recipients GROUP BY campaign, state"
        )
        counts: dict[int, dict[str, int]] = {}
        for campaign, state, n in await cursor.fetchall():
            counts.setdefault(campaign, {})[state] = n
    return {app: (status, why, counts.get(cid, {})) for cid, app, status, why in rows}


@pytest.fixture
async def mock() -> object:
    server = MockGupshupServer()
    server.app = MockGupshupApp(token=server.token, recorder=server.recorder)
    async with server:
        yield server


# ---------------------------------------------------------------- a poison campaign


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("message", json.dumps({"type": "no-such-kind"}), "message"),
        ("message", json.dumps(["not", "an", "object"]), "message"),
        ("rate", "0", "rate"),
        ("concurrency", "0", "concurrency"),
    ],
)
async def test_a_campaign_a_worker_cannot_run_is_stopped_and_the_other_apps_still_sent(
    database_url: str, mock: MockGupshupServer, column: str, value: str, named: str
) -> None:
    """Rows written by another version (or by hand) must not crash every worker in turn."""
    from gupshup_async._scaleout import Worker

    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        await store.enqueue(_spec("app-a", mock.base_url), _numbers(0, 5))
        await store.enqueue(_spec("app-b", mock.base_url), _numbers(1, 5))
        await store.reader.execute(
            f"UPDATE gupshup_campaigns SET {column} = %s::text::"  # column from the list above
            f"{'jsonb' if column == 'message' else 'double precision'} WHERE app_id = 'app-a'",
            (value,),
        )
    worker = Worker(database_url, lease_seconds=LEASE, environ={TOKEN_VAR: mock.token})
    await asyncio.wait_for(worker.run(exit_when_idle=True), 30)
    found = await _campaigns(database_url)
    assert found["app-b"] == ("done", None, {"sent": 5})
    status, stopped_by, counts = found["app-a"]
    assert (status, counts) == ("stopped", {"pending": 5})
    assert stopped_by is not None
    assert stopped_by.startswith("cannot run this campaign: ")
    assert named in stopped_by
    assert sorted(m.to for m in mock.recorder.messages) == _numbers(1, 5)


# ---------------------------------------------------------------- recipients stuck in pending


async def test_recipients_left_pending_after_a_full_pass_stop_the_campaign_instead_of_a_loop(
    database_url: str, mock: MockGupshupServer
) -> None:
    """A pending row the sender cannot record (here a recipient another version normalised
    differently) made the worker re-run the campaign forever."""
    from gupshup_async._scaleout import Worker

    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        await store.enqueue(_spec("app-a", mock.base_url), _numbers(0, 5))
        await store.reader.execute(
            "UPDATE gupshup_recipients SET recipient = 'not a number' WHERE idx = 2"
        )
    worker = Worker(database_url, lease_seconds=LEASE, environ={TOKEN_VAR: mock.token})
    await asyncio.wait_for(worker.run(exit_when_idle=True), 20)
    status, stopped_by, counts = (await _campaigns(database_url))["app-a"]
    assert (status, counts) == ("stopped", {"sent": 4, "pending": 1})
    assert stopped_by == "1 recipient(s) stayed pending after a full pass: left pending"
    assert mock.recorder.total_attempts == 4


# ---------------------------------------------------------------- the database URL's password


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gupshup_async", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_malformed_database_url_never_shows_its_password(tmp_path: Path) -> None:
    # libpq quotes the token it cannot decode: here, the password.
    url = "postgresql://gupshup:s3cret%zzpw@127.0.0.1:9/gupshup"
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("917000000001\n")
    runs = {
        "worker": _cli("worker", "--journal", url, "--exit-when-idle"),
        "worker from the environment": _cli(
            "worker", "--exit-when-idle", env={"GUPSHUP_DATABASE_URL": url}
        ),
        "report": _cli("report", url, "--json"),
        "enqueue": _cli(
            "campaign",
            str(numbers),
            "--app-id",
            "app-a",
            "--text",
            "hi",
            "--journal",
            url,
            "--enqueue",
        ),
    }
    for what, done in runs.items():
        assert done.returncode == 2, (what, done.stderr)
        assert "s3cret" not in done.stderr + done.stdout, what
        assert "is not a valid postgresql:// URL" in done.stderr, what


# ---------------------------------------------------------------- the report


def test_a_report_on_a_database_without_the_tables_creates_nothing(database_url: str) -> None:
    """A report only reads: on a standby, or a mistyped database, it must not run DDL."""
    done = _cli("report", database_url, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "campaigns": [], "recipients": 0, "sent": 0, "failed": 0, "ambiguous": 0,
        "pending": 0, "sending": 0,
        "delivery": {"recipients": 0, "accepted": 0, "sent": 0, "delivered": 0, "read": 0,
                     "failed": 0, "failed_by_code": {}, "ambiguous_settled": 0,
                     "ambiguous_unsettled": 0, "no_status": 0, "not_accepted": {},
                     "unmatched_events": 0},
    }  # fmt: skip
    with psycopg.connect(database_url) as db:
        assert db.execute("SELECT to_regclass('gupshup_campaigns')").fetchone() == (None,)


# ---------------------------------------------------------------- --enqueue again


async def test_enqueue_again_after_the_campaign_ended_sends_nothing_twice(
    database_url: str, mock: MockGupshupServer
) -> None:
    """A retried `--enqueue` (its first run's answer lost) must not resend a done campaign;
    on a stopped one (say its token was fixed) it resumes the rest, nothing resent."""
    from gupshup_async._scaleout import Worker

    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        spec = _spec("app-a", mock.base_url)
        assert await store.enqueue(spec, _numbers(0, 4)) == (1, True)
        await Worker(database_url, lease_seconds=LEASE, environ={TOKEN_VAR: mock.token}).run(
            exit_when_idle=True
        )
        assert await store.enqueue(spec, _numbers(0, 4)) == (1, False)
        stopped = _spec("app-b", mock.base_url, recipients_sha256="other")
        assert await store.enqueue(stopped, _numbers(1, 3)) == (2, True)
        await Worker(database_url, lease_seconds=LEASE, environ={}).run(exit_when_idle=True)
        assert (await _campaigns(database_url))["app-b"][0] == "stopped"
        assert await store.enqueue(stopped, _numbers(1, 3)) == (2, False)
        await Worker(database_url, lease_seconds=LEASE, environ={TOKEN_VAR: mock.token}).run(
            exit_when_idle=True
        )
    found = await _campaigns(database_url)
    assert found == {"app-a": ("done", None, {"sent": 4}), "app-b": ("done", None, {"sent": 3})}
    assert sorted(m.to for m in mock.recorder.messages) == _numbers(0, 4) + _numbers(1, 3)


# ---------------------------------------------------------------- a lease that ran out locally


async def test_a_worker_whose_lease_ran_out_by_its_clock_sends_nothing_more(
    database_url: str, mock: MockGupshupServer
) -> None:
    """A mark commits under a live lease, but its send comes later (after the gate, or after
    the process was frozen): past the lease by the worker's own clock it must not go out.
    Here the renewals hang (the test locks the worker's row) and the injected clock jumps an
    hour, as a frozen-then-thawed process sees it; the database's lease still runs ~1 s."""
    from gupshup_async._scaleout import Worker

    numbers = _numbers(0, 60)
    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        spec = dataclasses.replace(_spec("app-a", mock.base_url), rate=20.0, concurrency=2)
        await store.enqueue(spec, numbers)
    started, jumped = asyncio.Event(), asyncio.Event()
    offset = [0.0]
    after_jump: list[str] = []

    def on_outcome(app_id: str, outcome: Outcome) -> None:
        if jumped.is_set():
            after_jump.append(outcome.recipient)
        elif outcome.index >= 5:
            started.set()

    worker = Worker(
        database_url,
        lease_seconds=LEASE,
        name="frozen",
        environ={TOKEN_VAR: mock.token},
        on_outcome=on_outcome,
        clock=lambda: time.monotonic() + offset[0],
    )
    run = asyncio.ensure_future(worker.run(exit_when_idle=True))
    await asyncio.wait_for(started.wait(), 20)
    async with await psycopg.AsyncConnection.connect(database_url) as blocker:
        await blocker.execute("SELECT 1 FROM gupshup_workers WHERE name LIKE 'frozen-%' FOR UPDATE")
        offset[0] = 3600.0
        jumped.set()
        await asyncio.sleep(0.8)  # the database's lease still holds: marks still commit
        assert len(after_jump) <= 2  # only what was already past the check (concurrency 2)
        await blocker.rollback()  # (before the fix: 20 msg/s went on, 14-16 here)
    await asyncio.wait_for(run, 30)  # the app is claimed again once its row expired
    accepted = Counter(m.to for m in mock.recorder.messages)
    assert max(accepted.values()) == 1
    status, _, counts = (await _campaigns(database_url))["app-a"]
    assert status == "done"
    assert counts.get("sent", 0) + counts.get("ambiguous", 0) == 60
    assert counts.get("ambiguous", 0) <= 2
    assert counts["sent"] == len(accepted)


# ---------------------------------------------------------------- guards: what held


async def test_two_workers_started_together_split_the_apps_and_send_each_once(
    database_url: str, mock: MockGupshupServer
) -> None:
    from gupshup_async._scaleout import Worker

    apps = ("app-a", "app-b", "app-c", "app-d")
    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        for k, app in enumerate(apps):
            await store.enqueue(_spec(app, mock.base_url, recipients_sha256=app), _numbers(k, 20))
    senders: dict[str, set[str]] = {"one": set(), "two": set()}

    def seen_by(name: str) -> Callable[[str, Outcome], None]:
        return lambda app_id, outcome: senders[name].add(app_id)

    workers = [
        Worker(database_url, lease_seconds=LEASE, name=name, environ={TOKEN_VAR: mock.token},
               on_outcome=seen_by(name))
        for name in senders
    ]  # fmt: skip
    await asyncio.wait_for(asyncio.gather(*(w.run(exit_when_idle=True) for w in workers)), 30)
    assert not senders["one"] & senders["two"]  # one sender per app
    assert senders["one"] | senders["two"] == set(apps)
    assert len(senders["one"]) == len(senders["two"]) == 2  # started together: fair shares
    accepted = Counter(m.to for m in mock.recorder.messages)
    assert sorted(accepted) == sorted(n for k in range(4) for n in _numbers(k, 20))
    assert set(accepted.values()) == {1}


async def test_concurrent_enqueues_of_one_campaign_store_it_once(database_url: str) -> None:
    stores = [await PostgresStore.connect(database_url) for _ in range(3)]
    try:
        spec = _spec("app-a", "http://127.0.0.1:9")
        await asyncio.gather(*(s.ensure_schema() for s in stores))
        results = await asyncio.gather(*(s.enqueue(spec, _numbers(0, 50)) for s in stores))
        assert sorted(results) == [(1, False), (1, False), (1, True)]
        assert await stores[0].counts() == {1: {"pending": 50}}
    finally:
        for s in stores:
            await s.aclose()


async def test_quotes_and_copy_escapes_are_stored_as_given(database_url: str) -> None:
    """Ids and recipients are parameters (and COPY rows are escaped), never SQL text."""
    hostile = "x'); DROP TABLE gupshup_recipients; --"
    recipients = ["917000000001", hostile, "9170\\N00002", "91700\t0003", "91700\n0004"]
    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        campaign, _ = await store.enqueue(_spec(hostile, "http://127.0.0.1:9"), recipients)
        spec = await store.campaign(campaign)
        assert spec.app_id == hostile
        assert [s.id for s in await store.campaigns(app_id=hostile)] == [campaign]
        cursor = await store.reader.execute(
            "SELECT recipient, state FROM gupshup_recipients ORDER BY idx"
        )
        rows = await cursor.fetchall()
    assert [r for r, _ in rows] == recipients
    assert [s for _, s in rows] == ["pending", "invalid", "invalid", "invalid", "invalid"]


def test_enqueue_to_a_database_that_does_not_answer_says_so_without_a_traceback(
    tmp_path: Path,
) -> None:
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("917000000001\n")
    done = _cli("campaign", str(numbers), "--app-id", "app-a", "--text", "hi", "--journal",
                "postgresql://gupshup:pw-secret@127.0.0.1:1/gupshup", "--enqueue")  # fmt: skip
    assert done.returncode == 4  # the journal cannot be written (1 is refused credentials)
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("gupshup-async: error: ")
    assert "pw-secret" not in done.stderr


async def test_an_app_no_worker_takes_within_its_fair_share_is_taken_once_overdue(
    database_url: str,
) -> None:
    """5 apps, 2 workers, one capped at 1 app (`--max-apps 1`): the other's fair share is 3,
    so the fifth app waited for a campaign to end. Free past one lease row's lifetime, any
    worker with room takes it."""
    from gupshup_async.journal.leases import Leases

    apps = [f"app-{c}" for c in "abcde"]
    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        for app in apps:
            await store.enqueue(_spec(app, "http://127.0.0.1:9", recipients_sha256=app), ["9"])
        db = store.reader
        capped, roomy = (Leases(db, name, lease_seconds=30) for name in ("capped", "roomy"))
        await capped.register()
        await roomy.register()
        assert await capped.claim(1) == ["app-a"]
        assert await roomy.claim(10) == ["app-b", "app-c", "app-d"]  # ceil(5 / 2)
        assert await roomy.claim(10, held=3) == []  # app-e only just became free
        await db.execute(
            "UPDATE gupshup_app_leases SET expires = clock_timestamp() - interval '1 minute' "
            "WHERE worker IS NULL"
        )  # free for longer than a lease row lives (22.5 s here): nobody took it
        assert await roomy.claim(10, held=3) == ["app-e"]
        assert await capped.claim(0, held=1) == []  # no room: never more than asked


@pytest.mark.parametrize("flag", ["--media", "--results"])
def test_enqueue_refuses_a_flag_a_worker_would_silently_drop(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gupshup_async.cli import main

    numbers = tmp_path / "to.csv"
    numbers.write_text("phone\n919876543210\n")
    extra = tmp_path / ("a.jpg" if flag == "--media" else "r.jsonl")
    if flag == "--media":
        extra.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    argv = ["campaign", str(numbers), "--app-id", "app", "--text", "caption"]
    argv += ["--journal", "postgresql://u@127.0.0.1:1/none", "--enqueue", flag, str(extra)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{flag} is not supported with --enqueue" in err
    assert err.count("\n") == 1
