"""Campaigns on Postgres shared by worker processes: enqueue, two workers, SIGKILL or a cut
database connection, exact counts at the mock (no duplicates, nothing lost)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gupshup_async.mock import MockGupshupApp, MockGupshupServer

LEASE = 2.0  # seconds: short, so a takeover happens within the test
APPS = ("app-a", "app-b", "app-c")
PER_APP = 200
RATE = 100.0
CONCURRENCY = 8
TOKEN_VAR = "WORKER_TEST_TOKEN"


def _number(app: int, i: int) -> str:
    return f"917{app}{i:08d}"


def _app_of(number: str) -> str:
    return APPS[int(number[3])]


@pytest.fixture
def mock() -> Iterator[MockGupshupServer]:
    server = MockGupshupServer()
    # Any app id, a bucket each at the campaigns' rate: a second sender for an app would show.
    server.app = MockGupshupApp(
        token=server.token, rate=RATE, recorder=server.recorder, bucket_per_app=True
    )
    server.start()
    yield server
    server.stop()


def _env(mock: MockGupshupServer, database_url: str) -> dict[str, str]:
    return {**os.environ, TOKEN_VAR: mock.token, "GUPSHUP_DATABASE_URL": database_url}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gupshup_async", *args]


def _enqueue(tmp_path: Path, mock: MockGupshupServer, env: dict[str, str]) -> None:
    for k, app in enumerate(APPS):
        numbers = tmp_path / f"{app}.txt"
        numbers.write_text("".join(_number(k, i) + "\n" for i in range(PER_APP)))
        done = subprocess.run(
            _cli("campaign", str(numbers), "--app-id", app, "--token-env", TOKEN_VAR,
                 "--rate", str(RATE), "--concurrency", str(CONCURRENCY), "--text", "Sale",
                 "--base-url", mock.base_url, "--enqueue"),
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"campaign {k + 1} enqueued: {PER_APP} pending\n"


def _worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            _cli("worker", "--lease", str(LEASE), "--name", name, "--exit-when-idle"),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_until(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _states(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as db:
        rows = db.execute("SELECT digits, state FROM gupshup_recipients").fetchall()
    return dict(rows)


def _check_exactly_once(mock: MockGupshupServer, database_url: str) -> Counter[str]:
    """Every recipient final; none accepted twice; `sent` ones accepted exactly once."""
    accepted = Counter(m.to for m in mock.recorder.messages)
    states = _states(database_url)
    assert len(states) == len(APPS) * PER_APP
    assert set(states.values()) <= {"sent", "ambiguous"}  # nothing pending or lost
    assert max(accepted.values()) == 1  # nothing delivered twice
    for number, state in states.items():
        if state == "sent":
            assert accepted[number] == 1, number
    return Counter(states.values())


def _largest_window(arrivals: list[float]) -> int:
    arrivals.sort()
    best, start = 0, 0
    for end, t in enumerate(arrivals):
        while t - arrivals[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_sigkill_a_worker_and_the_other_resumes_its_apps_within_the_lease(
    mock: MockGupshupServer, database_url: str, tmp_path: Path
) -> None:
    env = _env(mock, database_url)
    _enqueue(tmp_path, mock, env)
    first = _worker(env, "first", tmp_path / "first.log")
    # The first worker takes every app; a second one joining later takes none from it.
    _wait_until(lambda: {_app_of(m.to) for m in mock.recorder.messages} == set(APPS), 30)
    second = _worker(env, "second", tmp_path / "second.log")
    try:
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed = time.monotonic()
        before = mock.recorder.total_accepted
        assert second.wait(timeout=60) == 0, (tmp_path / "second.log").read_text()
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()
    counts = _check_exactly_once(mock, database_url)
    # At most `concurrency` per app were on the wire at the kill.
    assert counts["ambiguous"] <= CONCURRENCY * len(APPS)
    assert counts["sent"] + counts["ambiguous"] == len(APPS) * PER_APP
    assert before < len(APPS) * PER_APP  # the kill happened mid-run
    arrivals = [m.arrival for m in mock.recorder.messages]
    after = sorted(t for t in arrivals if t > killed + 0.3)
    # Nobody sent while the dead worker's leases ran out; the second took over within a lease
    # period of the kill (plus its claim interval and start-up).
    assert after
    failover = after[0] - killed
    assert LEASE / 3 < failover < LEASE + 1.5, failover
    # Each app's rate held: one sender per app at any time.
    for k, app in enumerate(APPS):
        mine = [m.arrival for m in mock.recorder.messages if _app_of(m.to) == app]
        assert _largest_window(mine) <= RATE + RATE / 10, app
        assert mock.recorder.attempts[_number(k, 0)] == 1


def test_a_cut_database_connection_hands_the_apps_over_and_sends_nothing_twice(
    mock: MockGupshupServer, database_url: str, tmp_path: Path
) -> None:
    env = _env(mock, database_url)
    _enqueue(tmp_path, mock, env)
    first = _worker(env, "first", tmp_path / "first.log")
    _wait_until(lambda: mock.recorder.total_accepted >= 60, 30)
    second = _worker(env, "second", tmp_path / "second.log")
    try:
        time.sleep(0.3)
        with psycopg.connect(database_url, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'first-%'"
            ).fetchall()
        assert len(cut) == 3  # the writer, the reader and the lease connection
        assert second.wait(timeout=60) == 0, (tmp_path / "second.log").read_text()
        assert first.wait(timeout=60) == 0, (tmp_path / "first.log").read_text()
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()
    counts = _check_exactly_once(mock, database_url)
    assert counts["ambiguous"] <= CONCURRENCY * len(APPS)
    assert "database failed" in (tmp_path / "first.log").read_text()


def test_report_reads_every_campaign_from_postgres(
    mock: MockGupshupServer, database_url: str, tmp_path: Path
) -> None:
    env = _env(mock, database_url)
    _enqueue(tmp_path, mock, env)
    worker = subprocess.run(
        _cli("worker", "--lease", str(LEASE), "--exit-when-idle"),
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert mock.recorder.total_accepted == len(APPS) * PER_APP
    report = subprocess.run(
        _cli("report", database_url, "--json"), env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    data = json.loads(report.stdout)
    assert [(c["id"], c["app_id"], c["status"], c["sent"]) for c in data["campaigns"]] == [
        (1, "app-a", "done", PER_APP), (2, "app-b", "done", PER_APP), (3, "app-c", "done", PER_APP),
    ]  # fmt: skip
    assert data["sent"] == len(APPS) * PER_APP
    one = subprocess.run(
        _cli("report", database_url, "--campaign", "2", "--json"), env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert [c["id"] for c in json.loads(one.stdout)["campaigns"]] == [2]


def test_enqueue_needs_a_postgres_url_and_refuses_bad_input(
    database_url: str, tmp_path: Path
) -> None:
    numbers = tmp_path / "n.txt"
    numbers.write_text("917000000001\n")
    env = {k: v for k, v in os.environ.items() if k != "GUPSHUP_DATABASE_URL"}
    base = ["campaign", str(numbers), "--app-id", "a", "--text", "x", "--enqueue"]
    cases = {
        ("--journal", str(tmp_path / "j.sqlite3")): "must be a postgresql:// URL",
        (): "GUPSHUP_DATABASE_URL",
        ("--journal", database_url, "--token-env", "NOT A NAME"): "--token-env must name",
    }
    for extra, expected in cases.items():
        done = subprocess.run(
            _cli(*base, *extra), env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2, extra
        assert expected in done.stderr
    # Without --enqueue a Postgres journal is refused: workers run those campaigns.
    done = subprocess.run(
        _cli("campaign", str(numbers), "--app-id", "a", "--text", "x", "--journal", database_url),
        env={**env, "GUPSHUP_APP_TOKEN": "sk_x"}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "add --enqueue" in done.stderr


async def test_leases_share_the_apps_fairly_and_a_late_joiner_takes_only_free_ones(
    database_url: str,
) -> None:
    from gupshup_async.journal.leases import Leases
    from gupshup_async.journal.postgres import CampaignSpec, PostgresStore

    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        for app in APPS:
            spec = CampaignSpec(app_id=app, message={"type": "text", "text": {"body": "x"}},
                                token_env=TOKEN_VAR, base_url="http://127.0.0.1:9", rate=None,
                                burst=None, concurrency=1, timeout=1.0, max_retries=0,
                                message_sha256="m", recipients_sha256=app)  # fmt: skip
            await store.enqueue(spec, ["917000000001"])
        db = store.reader
        first, second = (Leases(db, name, lease_seconds=30) for name in ("first", "second"))
        await first.register()
        await second.register()
        assert await first.claim(10) == ["app-a", "app-b"]  # ceil(3 apps / 2 workers)
        assert await first.claim(10, held=2) == []
        assert await second.claim(10) == ["app-c"]
        late = Leases(db, "late", lease_seconds=30)
        await late.register()
        assert await late.claim(10) == []  # nothing free: it takes nothing from live workers
        # The first worker dies: its entry and leases expire; the others share its apps.
        await db.execute(
            "UPDATE gupshup_workers SET expires = clock_timestamp() WHERE name = 'first'"
        )
        await db.execute(
            "UPDATE gupshup_app_leases SET expires = clock_timestamp() WHERE worker = 'first'"
        )
        assert await late.claim(10) == ["app-a", "app-b"]  # ceil(3 / 2) = 2
        assert await first.renew(["app-a", "app-b"]) == set()  # too late: it lost them


async def _enqueue_one(database_url: str, base_url: str, numbers: list[str]) -> int:
    from gupshup_async.journal.postgres import CampaignSpec, PostgresStore

    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        spec = CampaignSpec(app_id="app-a", message={"type": "text", "text": {"body": "x"}},
                            token_env=TOKEN_VAR, base_url=base_url, rate=None, burst=None,
                            concurrency=2, timeout=5.0, max_retries=0, message_sha256="m",
                            recipients_sha256="r")  # fmt: skip
        campaign, _ = await store.enqueue(spec, numbers)
        return campaign


async def _campaign_row(database_url: str) -> tuple[str, str | None, dict[str, int]]:
    async with await psycopg.AsyncConnection.connect(database_url) as db:
        cursor = await db.execute("SELECT status, stopped_by FROM gupshup_campaigns")
        row = await cursor.fetchone()
        assert row is not None
        cursor = await db.execute("SELECT state, count(*) FROM gupshup_recipients GROUP BY state")
        return row[0], row[1], dict(await cursor.fetchall())


async def test_a_worker_without_the_token_variable_stops_the_campaign_naming_it(
    database_url: str,
) -> None:
    from gupshup_async._scaleout import Worker

    async with MockGupshupServer() as server:
        await _enqueue_one(database_url, server.base_url, ["917000000001"])
        await Worker(database_url, lease_seconds=LEASE, environ={}).run(exit_when_idle=True)
        assert server.recorder.total_attempts == 0
    assert await _campaign_row(database_url) == (
        "stopped", f"${TOKEN_VAR} is not set on the worker", {"pending": 1}
    )  # fmt: skip


async def test_a_refused_token_stops_the_campaign_with_the_rest_pending(
    database_url: str,
) -> None:
    from gupshup_async._scaleout import Worker

    numbers = [f"9170000000{i:02d}" for i in range(20)]
    async with MockGupshupServer() as server:
        await _enqueue_one(database_url, server.base_url, numbers)
        worker = Worker(database_url, lease_seconds=LEASE, environ={TOKEN_VAR: "sk_wrong"})
        await worker.run(exit_when_idle=True)
    status, stopped_by, counts = await _campaign_row(database_url)
    assert status == "stopped"
    assert stopped_by is not None
    assert "401" in stopped_by
    assert "sk_wrong" not in stopped_by
    assert counts == {"pending": 20}  # a refused token says nothing about the recipients


def test_sigterm_finishes_what_is_in_flight_and_frees_the_apps_at_once(
    mock: MockGupshupServer, database_url: str, tmp_path: Path
) -> None:
    env = _env(mock, database_url)
    _enqueue(tmp_path, mock, env)
    first = _worker(env, "first", tmp_path / "first.log")
    try:
        _wait_until(lambda: mock.recorder.total_accepted >= 60, 30)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    states = Counter(_states(database_url).values())
    assert set(states) == {"pending", "sent"}  # nothing left sending: in-flight sends recorded
    assert states["sent"] == mock.recorder.total_accepted
    with psycopg.connect(database_url) as db:
        assert db.execute("SELECT count(worker) FROM gupshup_app_leases").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM gupshup_workers").fetchone() == (0,)


async def test_workers_dead_for_over_an_hour_are_forgotten(database_url: str) -> None:
    from gupshup_async.journal.leases import Leases
    from gupshup_async.journal.postgres import PostgresStore

    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        db = store.reader
        await db.execute(
            "INSERT INTO gupshup_workers VALUES ('long-dead', clock_timestamp() - interval '2 hours'), "
            "('just-dead', clock_timestamp() - interval '1 minute')"
        )
        await Leases(db, "alive", lease_seconds=30).register()
        cursor = await db.execute("SELECT name FROM gupshup_workers ORDER BY name")
        assert await cursor.fetchall() == [("alive",), ("just-dead",)]
