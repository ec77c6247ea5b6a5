"""End to end, in processes: a campaign against the mock with webhooks on, `webhooks serve`
storing them into the journal, then `report --json` equals the mock's plan."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gupshup_async.mock import DeliveryPlan, FaultPlan, MockGupshupServer

SECRET = "e2e-5ecret"
PLAN = DeliveryPlan(seed=7, failures={131047: 0.1, 131026: 0.05, 131049: 0.05}, read_share=0.5,
                    duplicate_share=0.2, out_of_order_share=0.3)  # fmt: skip
#: Answers lost after acceptance (ambiguous), without a message id, refused before: each kind.
FAULTS = FaultPlan(seed=3, rates={"drop_after": 0.03, "no_message_id": 0.02, "drop_before": 0.01})


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUPSHUP_")}
    env.update(extra)
    return env


@contextlib.contextmanager
def _mock(**options: Any) -> Iterator[MockGupshupServer]:
    server = MockGupshupServer(**options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """`gupshup-async webhooks serve` in a subprocess on a fixed loopback port."""

    def __init__(self, journal: Path, port: int) -> None:
        self.journal, self.port = journal, port
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gupshup_async", "webhooks", "serve", "--journal",
             str(self.journal), "--port", str(self.port), "--path", "/hooks",
             "--secret-env", "HOOK_SECRET", "--secret-header", "X-Hook-Token"],
            env=_env(HOOK_SECRET=SECRET), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        line = self.process.stdout.readline()
        assert f"http://127.0.0.1:{self.port}/hooks" in line, line + self.process.stderr.read()

    def stop(self, sig: int = signal.SIGTERM) -> str:
        assert self.process is not None
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=30)
        self.process = None
        return out + err

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    hooks = Receiver(tmp_path / "campaign.sqlite3", _free_port())
    hooks.start()
    yield hooks
    if hooks.process is not None:
        hooks.stop(signal.SIGKILL)


def _campaign(mock: MockGupshupServer, recipients: Path, journal: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gupshup_async", "campaign", str(recipients), "--text", "hello",
         "--journal", str(journal), "--rate", "2000", "--timeout", "2", "--no-progress"],
        env=_env(GUPSHUP_APP_TOKEN=mock.token, GUPSHUP_APP_ID=mock.app_id,
                 GUPSHUP_BASE_URL=mock.base_url),
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _report(journal: Path, *extra: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "gupshup_async", "report", str(journal), "--json", *extra],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _recipients(path: Path, n: int) -> list[str]:
    numbers = [f"9171{i:08d}" for i in range(n)]
    path.write_text("phone\n" + "\n".join(numbers) + "\n")
    return numbers


def _ambiguous(journal: Path) -> set[str]:
    with sqlite3.connect(journal) as db:
        return {
            row[0] for row in db.execute("SELECT digits FROM recipients WHERE state = 'ambiguous'")
        }


def _expected(
    plan: DeliveryPlan, mock: MockGupshupServer, journal: Path, n: int, *, settles: bool
) -> dict[str, Any]:
    return expected_report(
        plan, set(mock.recorder.accepted), _ambiguous(journal), n, settles=settles
    )


def expected_report(
    plan: DeliveryPlan, accepted: set[str], ambiguous: set[str], n: int, *, settles: bool
) -> dict[str, Any]:
    """The report of `n` recipients once every event arrived; with `settles`, ambiguous sends
    the mock accepted are settled by their callback data."""
    settled = ambiguous & accepted if settles else set()
    expected = {"recipients": n, **plan.expected_funnel((accepted - ambiguous) | settled)}
    expected["ambiguous_settled"] = len(settled)
    expected["ambiguous_unsettled"] = len(ambiguous) - len(settled)
    return expected


def test_report_after_a_campaign_with_webhooks_equals_the_mocks_plan(
    receiver: Receiver, tmp_path: Path
) -> None:
    recipients = tmp_path / "to.csv"
    _recipients(recipients, 250)
    with _mock(faults=FAULTS, webhook_url=receiver.url, delivery=PLAN,
                           webhook_headers={"X-Hook-Token": SECRET}) as mock:  # fmt: skip
        _campaign(mock, recipients, receiver.journal)
        mock.wait_for_webhooks(60)
        assert mock.webhooks is not None
        assert mock.webhooks.gave_up == 0
        report = _report(receiver.journal)
        expected = _expected(PLAN, mock, receiver.journal, 250, settles=True)
    assert {key: report[key] for key in expected} == expected
    assert expected["ambiguous_settled"] >= 5  # the faults made some: each one settled
    assert (
        report["ambiguous_unsettled"]
        == len(_ambiguous(receiver.journal)) - expected["ambiguous_settled"]
    )
    assert report["unmatched_events"] == 0
    assert "new events" in receiver.stop()


def test_without_callback_data_statuses_still_match_by_message_id(
    receiver: Receiver, tmp_path: Path
) -> None:
    recipients = tmp_path / "to.csv"
    _recipients(recipients, 200)
    plan = DeliveryPlan(
        seed=8, failures={131047: 0.2}, echo_callback_data=False, delays=(0, 0, 0, 0)
    )
    faults = FaultPlan(seed=4, rates={"drop_after": 0.05})
    with _mock(faults=faults, webhook_url=receiver.url, delivery=plan,
                           webhook_headers={"X-Hook-Token": SECRET}) as mock:  # fmt: skip
        _campaign(mock, recipients, receiver.journal)
        mock.wait_for_webhooks(60)
        report = _report(receiver.journal)
        expected = _expected(plan, mock, receiver.journal, 200, settles=False)
    assert {key: report[key] for key in expected} == expected
    # the lost answers' statuses name no known message: kept, not guessed by phone number
    assert report["unmatched_events"] > 0


def test_a_receiver_killed_mid_stream_loses_nothing_and_applies_each_event_once(
    receiver: Receiver, tmp_path: Path
) -> None:
    recipients = tmp_path / "to.csv"
    _recipients(recipients, 300)
    plan = DeliveryPlan(seed=9, failures={131026: 0.1}, delays=(0.0, 0.2, 0.5, 1.0),
                        retry_initial=0.1, retry_max=0.5, max_attempts=100)  # fmt: skip
    with _mock(webhook_url=receiver.url, delivery=plan,
                           webhook_headers={"X-Hook-Token": SECRET}) as mock:  # fmt: skip
        _campaign(mock, recipients, receiver.journal)
        receiver.stop(signal.SIGKILL)  # events in flight: never acknowledged, so retried
        time.sleep(0.5)
        receiver.start()
        mock.wait_for_webhooks(90)
        assert mock.webhooks is not None
        assert mock.webhooks.attempts > mock.webhooks.posted  # the mock did retry
        report = _report(receiver.journal)
        expected = _expected(plan, mock, receiver.journal, 300, settles=True)
    assert {key: report[key] for key in expected} == expected
    with sqlite3.connect(receiver.journal) as db:
        stored = db.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0]
    assert stored == sum(len(plan.statuses(to)) for to in mock.recorder.accepted)


def test_serve_refuses_to_start_without_a_secret_or_allowlist(tmp_path: Path) -> None:
    base = [
        sys.executable,
        "-m",
        "gupshup_async",
        "webhooks",
        "serve",
        "--journal",
        str(tmp_path / "j"),
    ]
    bare = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False, env=_env())
    unset = subprocess.run([*base, "--secret-env", "NOPE_UNSET"], capture_output=True, text=True,
                           timeout=60, check=False, env=_env())  # fmt: skip
    empty = subprocess.run([*base, "--secret-env", "EMPTY"], capture_output=True, text=True,
                           timeout=60, check=False, env=_env(EMPTY=""))  # fmt: skip
    assert [bare.returncode, unset.returncode, empty.returncode] == [2, 2, 2]
    assert "give --secret-env NAME (a shared secret) or --allow-ip CIDR" in bare.stderr
    assert "$NOPE_UNSET (--secret-env) is unset or empty" in unset.stderr
    assert "$EMPTY (--secret-env) is unset or empty" in empty.stderr


def test_report_of_a_missing_journal_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gupshup_async", "report", str(tmp_path / "none.sqlite3")],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert re.search(r"journal .*none\.sqlite3 does not exist", done.stderr)


def test_serve_does_not_trust_x_forwarded_for_unless_told(tmp_path: Path) -> None:
    port = _free_port()
    base = [sys.executable, "-m", "gupshup_async", "webhooks", "serve", "--journal",
            str(tmp_path / "j.sqlite3"), "--port", str(port), "--allow-ip", "10.0.0.0/8"]  # fmt: skip
    body = {
        "entry": [
            {
                "changes": [
                    {"value": {"statuses": [{"gs_id": "g", "status": "sent", "timestamp": 1}]}}
                ]
            }
        ]
    }
    answers = []
    for extra in ([], ["--trusted-proxy", "127.0.0.1/32"]):
        process = subprocess.Popen([*base, *extra], env=_env(), stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            process.stdout.readline()
            spoofed = httpx.post(
                f"http://127.0.0.1:{port}/", json=body, headers={"X-Forwarded-For": "10.1.2.3"}
            )
            answers.append(spoofed.status_code)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
    # uvicorn's own proxy headers would believe 127.0.0.1; only --trusted-proxy may
    assert answers == [403, 200]


@pytest.mark.parametrize(
    ("content", "what"),
    [(b"phone\n917000000001\n", "not an SQLite file"), (None, "an SQLite database without a "
     "recipients table")],
)  # fmt: skip
def test_serve_refuses_a_file_that_is_not_a_journal_and_leaves_it_as_it_was(
    tmp_path: Path, content: bytes | None, what: str
) -> None:
    path = tmp_path / "given"
    if content is None:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE contacts (phone TEXT)")
        db.close()
    else:
        path.write_bytes(content)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    serve = [sys.executable, "-m", "gupshup_async", "webhooks", "serve", "--journal", str(path),
             "--port", "0", "--allow-ip", "127.0.0.1/32"]  # fmt: skip
    done = subprocess.run(
        serve, capture_output=True, text=True, timeout=60, check=False, env=_env()
    )
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"gupshup-async: error: --journal {path} is not a campaign journal ({what})\n"
    )
    assert after == before
