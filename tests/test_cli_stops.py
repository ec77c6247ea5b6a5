"""The campaign command against operator mistakes that used to send twice or write off
recipients: two processes on one journal, a wrong URL or account, a stop during a retry wait,
throttling noise. Console script in a subprocess, loopback mock, counts from the mock."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from gupshup_async.mock import FaultPlan, MockGupshupServer

from .cli_support import campaign_command, cli_env, run, write_numbers


def _wait_for(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


def _states(journal: Path) -> dict[str, int]:
    with sqlite3.connect(journal) as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- 10.1 one process per journal


def test_a_second_process_on_a_held_journal_exits_2_at_once_naming_the_holder(
    tmp_path: Path,
) -> None:
    mock = MockGupshupServer(faults=FaultPlan(latency=0.2))
    mock.start()
    try:
        to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
        write_numbers(to, 200)
        args = campaign_command(to, "--text", "x", "--concurrency", "8", "--journal", journal)
        first = subprocess.Popen(args, env=cli_env(mock), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
        _wait_for(lambda: mock.recorder.total_attempts >= 8)
        started = time.monotonic()
        second = run(args, cli_env(mock))
        took = time.monotonic() - started
        attempts_when_refused = mock.recorder.total_attempts
        first.communicate(timeout=60)

        assert second.returncode == 2, second.stdout
        assert f"pid {first.pid} on host {socket.gethostname()}" in second.stderr
        assert "nothing was sent" in second.stderr
        assert attempts_when_refused < 200  # the first one was still sending
        assert took < 10
        assert first.returncode == 0
        assert mock.recorder.total_accepted == 200
        assert set(mock.recorder.accepted.values()) == {1}  # nobody received it twice
    finally:
        mock.stop()


# ---------------------------------------------------------------- 10.2 failures about the channel


@pytest.mark.parametrize("mistake", ["closed port", "https to a plain HTTP port"])
def test_a_wrong_base_url_stops_with_exit_3_leaving_everyone_pending_then_a_rerun_sends(
    tmp_path: Path, mistake: str
) -> None:
    to, journal, results = tmp_path / "to.csv", tmp_path / "j.sqlite3", tmp_path / "r.jsonl"
    write_numbers(to, 300)
    mock = MockGupshupServer()
    mock.start()
    closed = f"http://127.0.0.1:{_free_port()}"
    if mistake != "closed port":  # the TLS handshake fails: no request is ever written
        closed = mock.base_url.replace("http://", "https://")
    try:
        args = campaign_command(to, "--text", "x", "--rate", "1000", "--max-retries", "0",
                                "--journal", journal, "--results", results)  # fmt: skip
        wrong = run(args, cli_env(mock, GUPSHUP_BASE_URL=closed))

        assert wrong.returncode == 3, wrong.stdout + wrong.stderr
        assert "Campaign stopped: the API could not be used" in wrong.stdout
        assert "connection failed" in wrong.stdout
        assert "not finished 300" in wrong.stdout
        assert _states(journal) == {"pending": 300}
        assert mock.recorder.total_attempts == 0
        assert results.read_text() == ""

        fixed = run(args, cli_env(mock))
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert mock.recorder.total_accepted == 300
        assert set(mock.recorder.accepted.values()) == {1}
        assert _states(journal) == {"sent": 300}
    finally:
        mock.stop()


def _http_answer(status: int, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    head = (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n")  # fmt: skip
    return head.encode() + data


class _AccountRefusingServer:
    """A raw loopback HTTP server answering `status` with a Gupshup code: to every request,
    or only to the numbers in `refused` (the others are accepted)."""

    def __init__(
        self, status: int, code: int, message: str, refused: set[str] | None = None
    ) -> None:
        self.answer = _http_answer(status, {"status": "error", "code": code, "message": message})
        self.refused = refused
        self.accepted: list[str] = []
        self.requests = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> _AccountRefusingServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
                to = json.loads(await reader.readexactly(length))["to"]
                self.requests += 1
                if self.refused is None or to in self.refused:
                    writer.write(self.answer)
                else:
                    self.accepted.append(to)
                    writer.write(_http_answer(200, {"messages": [{"id": f"gs-{to}"}]}))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [(400, 1003, "Wallet balance low"), (200, 1003, "Wallet balance low"),
     (429, 4001, "API rate limited")],
)  # fmt: skip
def test_an_account_problem_known_by_its_code_stops_with_exit_3_and_a_rerun_sends(
    tmp_path: Path, status: int, code: int, message: str
) -> None:
    to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
    write_numbers(to, 100)
    args = campaign_command(to, "--text", "x", "--rate", "1000", "--max-retries", "0",
                            "--concurrency", "4", "--journal", journal)  # fmt: skip
    mock = MockGupshupServer()
    mock.start()
    try:
        with _AccountRefusingServer(status, code, message) as refusing:
            stopped = run(args, cli_env(mock, GUPSHUP_BASE_URL=refusing.base_url))
        assert stopped.returncode == 3, stopped.stdout + stopped.stderr
        assert f"Gupshup code {code}" in stopped.stdout
        assert _states(journal) == {"pending": 100}
        assert refusing.requests < 100

        fixed = run(args, cli_env(mock))
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert mock.recorder.total_accepted == 100
        assert set(mock.recorder.accepted.values()) == {1}
    finally:
        mock.stop()


def test_a_few_account_failures_stay_pending_and_exit_3_at_the_end(tmp_path: Path) -> None:
    to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
    numbers = write_numbers(to, 30)
    refused = set(numbers[5:8])  # fewer than CHANNEL_FAILURE_LIMIT: the run goes on
    args = campaign_command(to, "--text", "x", "--journal", journal)
    with _AccountRefusingServer(400, 1003, "Wallet balance low", refused) as wallet:
        partly = run(args, cli_env(None, GUPSHUP_APP_ID="a", GUPSHUP_APP_TOKEN="t",
                                   GUPSHUP_BASE_URL=wallet.base_url))  # fmt: skip
    assert partly.returncode == 3, partly.stdout + partly.stderr
    assert "could not be used for 3 recipient(s)" in partly.stdout
    assert sorted(wallet.accepted) == sorted(set(numbers) - refused)
    assert _states(journal) == {"sent": 27, "pending": 3}
    mock = MockGupshupServer(app_id="a", token="t")
    mock.start()
    try:
        rest = run(args, cli_env(mock))
    finally:
        mock.stop()
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert sorted(mock.recorder.accepted) == sorted(refused)
    assert _states(journal) == {"sent": 30}


def test_retry_failed_sends_again_what_surely_failed_never_the_ambiguous(tmp_path: Path) -> None:
    to, journal, results = tmp_path / "to.csv", tmp_path / "j.sqlite3", tmp_path / "r.jsonl"
    numbers = write_numbers(to, 4)
    refused, ambiguous = numbers[1], numbers[2]
    mock = MockGupshupServer(faults=FaultPlan(schedule={refused: ["400"], ambiguous: ["504"]}))
    mock.start()
    try:
        args = campaign_command(to, "--text", "x", "--journal", journal, "--results", results)
        first = run(args, cli_env(mock))
        assert first.returncode == 0, first.stderr
        assert _states(journal) == {"sent": 2, "failed": 1, "ambiguous": 1}
        plain = run(args, cli_env(mock))
        assert plain.returncode == 0, plain.stderr
        assert mock.recorder.attempts[refused] == 1  # a plain rerun leaves it alone

        again = run([*args, "--retry-failed"], cli_env(mock))
        assert again.returncode == 0, again.stderr
        assert mock.recorder.attempts[refused] == 2
        assert mock.recorder.attempts[ambiguous] == 1  # that stays --resend-ambiguous
        assert mock.recorder.accepted[refused] == 1
        assert _states(journal) == {"sent": 3, "ambiguous": 1}
        recorded = [json.loads(line) for line in results.read_text().splitlines()]
        assert [r["success"] for r in recorded] == [True, True, False, True]
    finally:
        mock.stop()


# ---------------------------------------------------------------- 10.3 a stop during a retry wait


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_waiting_for_a_retry_keeps_them_pending_and_resume_sends_them(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    to, journal, results = tmp_path / "to.csv", tmp_path / "j.sqlite3", tmp_path / "r.jsonl"
    numbers = write_numbers(to, 40)
    # The first wave (one per worker) is throttled with a long Retry-After: they all wait.
    throttled = numbers[:8]
    plan = FaultPlan(schedule={n: ["429_after"] for n in throttled}, retry_after=30)
    mock = MockGupshupServer(faults=plan)
    mock.start()
    try:
        args = campaign_command(to, "--text", "x", "--concurrency", "8", "--rate", "1000",
                                "--journal", journal, "--results", results)  # fmt: skip
        process = subprocess.Popen(args, env=cli_env(mock), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        _wait_for(lambda: mock.recorder.total_attempts >= len(throttled), seconds=10)
        time.sleep(0.5)  # every throttled worker is now waiting for its retry
        assert mock.recorder.total_accepted == 0
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)

        assert process.returncode == status, stdout + stderr
        assert "Campaign interrupted" in stdout
        assert _states(journal) == {"pending": 40}  # the mock only ever answered 429

        resumed = run(args, cli_env(mock))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert mock.recorder.total_accepted == 40
        assert set(mock.recorder.accepted.values()) == {1}
        assert all(mock.recorder.attempts[n] == 2 for n in throttled)
    finally:
        mock.stop()


# ---------------------------------------------------------------- 10.8 throttling, quietly


def test_throttling_is_shown_in_the_bar_and_summarised_once_not_logged_per_event(
    tmp_path: Path,
) -> None:
    to = tmp_path / "to.csv"
    write_numbers(to, 800)
    mock = MockGupshupServer(faults=FaultPlan(rates={"429": 0.02}, seed=3))
    mock.start()
    try:
        args = campaign_command(to, "--text", "x", "--rate", "300", "--progress")
        done = run(args, cli_env(mock))
    finally:
        mock.stop()

    assert done.returncode == 0, done.stderr
    output = (done.stdout + done.stderr).splitlines()
    mentions = [line for line in output if "throttl" in line.lower()]
    assert len(mentions) == 1, mentions
    cuts = re.fullmatch(r"Throttled.*, rate cut (\d+) time\(s\).*", mentions[0])
    assert cuts is not None, mentions[0]
    assert int(cuts.group(1)) >= 1
    bar = [line for line in output if line.startswith("sending")]
    assert bar
    assert f"cuts {cuts.group(1)}" in bar[-1]
    assert not [line for line in output if line.startswith("warning:")]
    assert mock.recorder.total_accepted == 800
    assert set(mock.recorder.accepted.values()) == {1}
