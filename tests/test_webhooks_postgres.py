"""End to end on Postgres, in processes: campaigns enqueued, a worker sending to the mock with
webhooks on, `webhooks serve --journal postgresql://...` storing them, then `report --json`
equals the mock's plan; two receivers on one database apply each event once."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from gupshup_async.mock import DeliveryPlan, MockGupshupServer
from gupshup_async.webhooks import WebhookReceiver
from tests.test_webhooks_end_to_end import (
    FAULTS,
    PLAN,
    SECRET,
    Receiver,
    _env,
    _free_port,
    _mock,
    _recipients,
    expected_report,
)

from .pg_support import cut_connections

TOKEN_VAR = "PG_HOOKS_TOKEN"


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gupshup_async", *args], env=env,
                          capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _send(mock: MockGupshupServer, database_url: str, recipients: Path) -> None:
    env = _env(**{TOKEN_VAR: mock.token, "GUPSHUP_DATABASE_URL": database_url})
    _cli(env, "campaign", str(recipients), "--app-id", mock.app_id, "--token-env", TOKEN_VAR,
         "--rate", "2000", "--timeout", "2", "--text", "hello", "--base-url", mock.base_url,
         "--enqueue")  # fmt: skip
    _cli(env, "worker", "--lease", "5", "--exit-when-idle")


def _report(database_url: str, *extra: str) -> dict[str, Any]:
    return dict(json.loads(_cli(_env(), "report", database_url, "--json", *extra)))


def _ambiguous(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as db:
        rows = db.execute("SELECT digits FROM gupshup_recipients WHERE state = 'ambiguous'")
        return {row[0] for row in rows.fetchall()}


def test_a_worker_campaign_with_webhooks_reports_the_mocks_plan(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver(database_url, _free_port())  # type: ignore[arg-type]
    receiver.start()
    try:
        recipients = tmp_path / "to.csv"
        _recipients(recipients, 250)
        with _mock(faults=FAULTS, webhook_url=receiver.url, delivery=PLAN,
                   webhook_headers={"X-Hook-Token": SECRET}) as mock:  # fmt: skip
            _send(mock, database_url, recipients)
            mock.wait_for_webhooks(60)
            assert mock.webhooks is not None
            assert mock.webhooks.gave_up == 0
            accepted = set(mock.recorder.accepted)
        report = _report(database_url)
        ambiguous = _ambiguous(database_url)
        # each ambiguous send the mock accepted is settled by its callback data alone
        expected = expected_report(PLAN, accepted, ambiguous, 250, settles=True)
        assert expected["ambiguous_settled"] >= 5  # the faults made some
        [campaign] = report["campaigns"]
        for funnel in (report["delivery"], campaign["delivery"]):
            assert {key: funnel[key] for key in expected} == expected
        assert report["delivery"]["unmatched_events"] == 0
        with psycopg.connect(database_url) as db:
            stored = db.execute("SELECT count(*) FROM gupshup_webhook_events").fetchone()
        assert stored == (sum(len(PLAN.statuses(to)) for to in accepted),)
        # The failures file: every failed status and every unsettled send, campaign first.
        failures = tmp_path / "failures.csv"
        _cli(_env(), "report", database_url, "--failures", str(failures))
        lines = failures.read_text().splitlines()
        assert lines[0].startswith("campaign,recipient,state,message_id,delivery,failure_code")
        assert len(lines) - 1 == expected["failed"] + expected["ambiguous_unsettled"]
    finally:
        assert "new events" in receiver.stop()


def test_two_receivers_given_the_same_events_apply_each_once(
    database_url: str, tmp_path: Path
) -> None:
    # The database's campaign: 60 recipients sent with known message ids.
    plan = DeliveryPlan(seed=5, failures={131026: 0.2}, read_share=0.5)
    numbers = [f"9172{i:08d}" for i in range(60)]
    recipients = tmp_path / "to.csv"
    recipients.write_text("phone\n" + "\n".join(numbers) + "\n")
    with _mock() as mock:
        _send(mock, database_url, recipients)
        ids = {message.to: message.id for message in mock.recorder.messages}

    def status(to: str, word: str, k: int) -> dict[str, Any]:
        item: dict[str, Any] = {"gs_id": ids[to], "status": word, "timestamp": 1710941393 + k}
        if word == "failed":
            item["errors"] = [{"code": plan.fate(to)[1], "title": "Message undeliverable"}]
        return {"entry": [{"changes": [{"field": "messages", "value": {"statuses": [item]}}]}]}

    bodies = [status(to, word, k) for to in numbers for k, word in enumerate(plan.statuses(to))]
    receivers = [Receiver(database_url, _free_port()) for _ in range(2)]  # type: ignore[arg-type]
    for receiver in receivers:
        receiver.start()
    try:

        def post_all(receiver: Receiver) -> list[int]:
            with httpx.Client(headers={"X-Hook-Token": SECRET}) as client:
                return [client.post(receiver.url, json=body).status_code for body in bodies]

        with ThreadPoolExecutor(4) as pool:  # each receiver gets every event, twice
            answers = list(pool.map(post_all, receivers * 2))
    finally:
        outputs = [receiver.stop() for receiver in receivers]
    assert answers == [[200] * len(bodies)] * 4
    new = [int(out.split("Stopped: ")[1].split(" new events")[0]) for out in outputs]
    assert sum(new) == len(bodies)  # each event new exactly once, whichever receiver had it
    text = _cli(_env(), "report", database_url).splitlines()
    funnel = plan.expected_funnel(numbers)
    assert text[:3] == [f"campaign 1 app {mock.app_id} done: 60 sent", "  Recipients: 60",
                        "  Accepted by Gupshup: 60"]  # fmt: skip
    assert "  Failures by code:" in text
    assert any(line.split()[:2] == ["131026", str(funnel["failed"])] for line in text)
    report = _report(database_url)
    assert {key: report["delivery"][key] for key in ("accepted", "sent", "delivered", "read",
            "failed", "failed_by_code")} == plan.expected_funnel(numbers)  # fmt: skip


# ---------------------------------------------------------------- the receiver in-process


def _body(*statuses: tuple[str, str]) -> dict[str, Any]:
    items = [{"gs_id": gs, "status": word, "timestamp": 1710941393} for gs, word in statuses]
    return {"entry": [{"changes": [{"field": "messages", "value": {"statuses": items}}]}]}


def _client(receiver: WebhookReceiver) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=receiver, client=("127.0.0.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://receiver")


async def _stored(database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as db:
        cursor = await db.execute("SELECT count(*) FROM gupshup_webhook_events")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_the_receiver_commits_to_postgres_before_it_answers(database_url: str) -> None:
    receiver = WebhookReceiver(journal=database_url, secret=SECRET)
    headers = {"X-Webhook-Secret": SECRET}
    try:
        async with _client(receiver) as http:
            first = await http.post("/", json=_body(("gs-1", "sent")), headers=headers)
            assert first.status_code == 200
            assert await _stored(database_url) == 1  # committed before the 200
            both = await asyncio.gather(
                *(http.post("/", json=_body(("gs-1", "sent"), (f"gs-{i}", "read")), headers=headers)
                  for i in range(2, 12))
            )  # fmt: skip
    finally:
        await receiver.aclose()
    assert [answer.status_code for answer in both] == [200] * 10
    assert receiver.stats == {"accepted": 11, "events": 11, "duplicates": 10, "refused": 0}
    assert await _stored(database_url) == 11


async def test_the_receiver_answers_503_while_its_connection_is_cut_then_recovers(
    database_url: str,
) -> None:
    receiver = WebhookReceiver(journal=database_url, secret=SECRET)
    headers = {"X-Webhook-Secret": SECRET}
    try:
        async with _client(receiver) as http:
            assert (
                await http.post("/", json=_body(("gs-1", "sent")), headers=headers)
            ).status_code == 200
            assert await cut_connections(database_url) >= 1
            cut = await http.post("/", json=_body(("gs-2", "sent")), headers=headers)
            again = await http.post("/", json=_body(("gs-2", "sent")), headers=headers)
    finally:
        await receiver.aclose()
    assert (cut.status_code, again.status_code) == (503, 200)  # Gupshup retries the 503
    assert await _stored(database_url) == 2


async def test_a_postgres_receiver_never_shows_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "postgresql://hooks:pa55w0rd-x@127.0.0.1:1/journal"
    receiver = WebhookReceiver(journal=url, secret=SECRET)
    try:
        async with _client(receiver) as http:
            answer = await http.post(
                "/", json=_body(("gs-1", "sent")), headers={"X-Webhook-Secret": SECRET}
            )
    finally:
        await receiver.aclose()
    assert answer.status_code == 503
    assert "hooks:***@127.0.0.1:1" in repr(receiver)
    assert "cannot connect to postgresql://hooks:***@127.0.0.1:1/journal" in caplog.text
    assert "pa55w0rd" not in repr(receiver) + caplog.text


def test_serve_takes_the_database_from_the_environment_and_says_when_it_is_down(
    database_url: str,
) -> None:
    port = _free_port()
    serve = [sys.executable, "-m", "gupshup_async", "webhooks", "serve", "--port", str(port),
             "--allow-ip", "127.0.0.1/32"]  # fmt: skip
    down = subprocess.run(serve, env=_env(GUPSHUP_DATABASE_URL="postgresql://u:pa55w0rd-x@127.0.0.1:1/x"),
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert down.returncode == 4
    assert "cannot connect to postgresql://u:***@127.0.0.1:1/x" in down.stderr
    assert "pa55w0rd" not in down.stderr + down.stdout
    process = subprocess.Popen(serve, env=_env(GUPSHUP_DATABASE_URL=database_url),
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert process.stdout is not None
        assert f"http://127.0.0.1:{port}/ into postgresql://" in process.stdout.readline()
        answer = httpx.post(f"http://127.0.0.1:{port}/", json=_body(("gs-9", "read")))
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert answer.status_code == 200
    assert _report(database_url)["delivery"]["unmatched_events"] == 1


# ---------------------------------------------------------------- a database it cannot use: exit 4

PASSWORD = "pw-Hk41zQe"


def _serve_on(url: str) -> subprocess.CompletedProcess[str]:
    """`webhooks serve` with the URL in the environment, run until it exits on its own."""
    serve = [sys.executable, "-m", "gupshup_async", "webhooks", "serve", "--port", "0",
             "--allow-ip", "127.0.0.1/32"]  # fmt: skip
    return subprocess.run(serve, env=_env(GUPSHUP_DATABASE_URL=url), capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def _says_unusable(done: subprocess.CompletedProcess[str], why: str) -> None:
    assert done.returncode == 4, done.stderr
    assert done.stdout == ""  # never listened
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("gupshup-async: error: the Postgres journal could not be used (")
    assert lines[0].endswith("): fix it, then start webhooks serve again"), lines[0]
    assert why in lines[0], lines[0]
    assert PASSWORD not in done.stderr


def _elsewhere(url: str, *, database: str) -> str:
    """`url` with a password (its cluster trusts local roles: carried, never checked) and
    another database."""
    parts = urllib.parse.urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{PASSWORD}@{parts.netloc.rpartition('@')[2]}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, path=f"/{database}"))


def test_serve_exits_4_when_the_database_does_not_exist(postgres_server: str) -> None:
    missing = f"missing_{uuid.uuid4().hex[:8]}"
    done = _serve_on(_elsewhere(postgres_server, database=missing))
    _says_unusable(done, f'database "{missing}" does not exist')


def test_serve_exits_4_on_a_closed_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    done = _serve_on(f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed}/gupshup")
    _says_unusable(done, f"cannot connect to postgresql://postgres:***@127.0.0.1:{closed}/gupshup")
    assert "Connection refused" in done.stderr


def test_serve_exits_4_when_no_server_listens_on_the_socket(tmp_path: Path) -> None:
    done = _serve_on(f"postgresql://postgres:{PASSWORD}@/gupshup?host={tmp_path / 'no-server'}")
    _says_unusable(done, f"{tmp_path / 'no-server'}/.s.PGSQL.5432")


def test_serve_exits_4_on_a_newer_schema(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("CREATE TABLE gupshup_schema (version INTEGER NOT NULL)")
        db.execute("INSERT INTO gupshup_schema (version) VALUES (99)")
    done = _serve_on(database_url)
    _says_unusable(done, "the database's journal schema is version 99, newer than this")


def test_serve_help_lists_its_exit_statuses() -> None:
    done = subprocess.run([sys.executable, "-m", "gupshup_async", "webhooks", "serve", "--help"],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert (
        "exit status: 0 stopped (SIGINT, SIGTERM), 2 bad usage, 4 the Postgres journal could not "
        "be used at start (unreachable, no such database or role, credentials refused, a newer "
        "schema)"
    ) in " ".join(done.stdout.split())
