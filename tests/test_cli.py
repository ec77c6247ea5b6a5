"""The console script end to end, in a subprocess, against the loopback mock."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gupshup_async.cli._recipients_file import inspect_recipients
from gupshup_async.mock import FaultPlan, MockGupshupServer

from .cli_support import campaign_command, cli_env, run, write_numbers


@pytest.fixture
def server() -> Iterator[MockGupshupServer]:
    mock = MockGupshupServer(faults=FaultPlan(latency=0.002))
    mock.start()
    yield mock
    mock.stop()


_env = cli_env
_command = campaign_command
_run = run


def _numbers(
    path: Path, n: int, *, header: str | None = "phone", extra: Sequence[str] = ()
) -> list[str]:
    return write_numbers(path, n, header=header, extra=tuple(extra))


def test_campaign_writes_one_result_per_recipient_and_exits_0(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    recipients = tmp_path / "to.csv"
    numbers = _numbers(recipients, 200, extra=["12", "917000000001"])
    results = tmp_path / "out.jsonl"
    done = _run(
        _command(recipients, "--text", "Hello", "--rate", "1000", "--results", results),
        _env(server),
    )

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["recipient"] for r in lines] == numbers
    assert sum(r["success"] for r in lines) == 200
    assert {tuple(sorted(r)) for r in lines} == {
        ("recipient", "result", "success"),
        ("error", "recipient", "success"),
    }
    assert server.recorder.total_accepted == 200
    assert all(n == 1 for n in server.recorder.accepted.values())
    assert "sent         200" in done.stdout
    assert "duplicates   1" in done.stdout
    assert server.token not in done.stdout + done.stderr
    assert server.token not in results.read_text()


def test_dry_run_sends_nothing_and_needs_no_token(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    recipients = tmp_path / "to.txt"
    _numbers(recipients, 160, header=None, extra=["bad"])
    env = _env(server)
    del env["GUPSHUP_APP_TOKEN"]
    done = _run(_command(recipients, "--text", "Hi", "--rate", "80", "--dry-run"), env)

    assert done.returncode == 0, done.stderr
    assert "to send      160" in done.stdout
    assert "would take   2.0 s" in done.stdout
    assert server.recorder.total_attempts == 0


@pytest.mark.parametrize(
    ("args", "env_change", "message"),
    [
        (["missing.csv", "--text", "x"], {}, "does not exist"),
        (["{to}", "--message-file", "{image}"], {}, "exactly one of 'id' or 'link'"),
        (["{to}", "--text", "x"], {"GUPSHUP_APP_TOKEN": ""}, "GUPSHUP_APP_TOKEN"),
        (["{to}", "--text", "x"], {"GUPSHUP_APP_TOKEN": "Bearer abc"}, "Bearer"),
        (["{to}", "--text", "x"], {"GUPSHUP_APP_ID": "a/b"}, "URL characters"),
        (["{to}", "--text", ""], {}, "at least 1 character"),
        (["{to}", "--text", "x", "--message-file", "{image}"], {}, "not allowed with"),
        (["{binary}", "--text", "x"], {}, "not UTF-8 text"),
        (["{to}", "--text", "x", "--rate", "0"], {}, "must be a number > 0"),
    ],
)
def test_bad_input_exits_2_before_any_request(
    server: MockGupshupServer,
    tmp_path: Path,
    args: list[str],
    env_change: dict[str, str],
    message: str,
) -> None:
    to = tmp_path / "to.csv"
    _numbers(to, 5)
    image = tmp_path / "image.json"
    image.write_text(
        json.dumps({"type": "image", "image": {"id": "MEDIA_ID", "link": "https://e.x/i.jpg"}})
    )
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 100)
    paths = {"to": to, "image": image, "binary": binary}
    argv = [a.format(**paths) for a in args]
    done = _run(_command(*argv), _env(server, **env_change))

    assert done.returncode == 2
    assert message in done.stderr
    assert server.recorder.total_attempts == 0
    if env_change.get("GUPSHUP_APP_TOKEN"):
        assert "abc" not in done.stderr


def test_resume_with_another_message_is_refused(server: MockGupshupServer, tmp_path: Path) -> None:
    to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
    _numbers(to, 10)
    first = _run(_command(to, "--text", "one", "--journal", journal), _env(server))
    assert first.returncode == 0, first.stderr
    second = _run(_command(to, "--text", "two", "--journal", journal), _env(server))
    assert second.returncode == 2
    assert "belongs to another campaign" in second.stderr
    assert server.recorder.total_accepted == 10


def test_message_file_in_the_api_shape(server: MockGupshupServer, tmp_path: Path) -> None:
    to, message = tmp_path / "to.csv", tmp_path / "m.json"
    _numbers(to, 3)
    message.write_text(
        json.dumps({"type": "image", "image": {"link": "https://e.x/i.jpg", "caption": "Hi"}})
    )
    done = _run(_command(to, "--message-file", message), _env(server))
    assert done.returncode == 0, done.stderr
    assert {m.type for m in server.recorder.messages} == {"image"}


def test_sigint_exits_130_and_keeps_in_flight_results(tmp_path: Path) -> None:
    mock = MockGupshupServer(faults=FaultPlan(latency=0.3))
    mock.start()
    try:
        to, journal, results = tmp_path / "to.csv", tmp_path / "j.sqlite3", tmp_path / "r.jsonl"
        _numbers(to, 400)
        args = _command(to, "--text", "x", "--rate", "100", "--concurrency", "8",
                        "--journal", journal, "--results", results)  # fmt: skip
        process = subprocess.Popen(
            args, env=_env(mock), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 30
        while mock.recorder.total_attempts < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "Campaign interrupted" in stdout
        recorded = [json.loads(line) for line in results.read_text().splitlines()]
        # Every request the mock answered has its result: none was in flight unrecorded.
        assert sum(r["success"] for r in recorded) == mock.recorder.total_accepted
        resumed = _run(
            _command(
                to, "--text", "x", "--rate", "1000", "--journal", journal, "--results", results
            ),
            _env(mock),
        )
        assert resumed.returncode == 0, resumed.stderr
        assert len(results.read_text().splitlines()) == 400
        assert mock.recorder.total_accepted == 400
        assert set(mock.recorder.accepted.values()) == {1}
    finally:
        mock.stop()


def test_sigkill_at_random_moments_then_resume_sends_each_at_most_once(tmp_path: Path) -> None:
    mock = MockGupshupServer(faults=FaultPlan(latency=0.005, latency_jitter=0.01))
    mock.start()
    try:
        to, journal, results = tmp_path / "to.csv", tmp_path / "j.sqlite3", tmp_path / "r.jsonl"
        numbers = _numbers(to, 3000)
        args = _command(to, "--text", "x", "--rate", "1000", "--concurrency", "32",
                        "--journal", journal, "--results", results)  # fmt: skip
        rng = random.Random(5)
        kills = 0
        for _ in range(4):
            target = mock.recorder.total_accepted + rng.randint(100, 500)
            process = subprocess.Popen(
                args, env=_env(mock), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 30
            while (
                mock.recorder.total_accepted < target
                and process.poll() is None
                and time.monotonic() < deadline
            ):
                time.sleep(0.01)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait(timeout=30)
        final = _run(args, _env(mock))
        assert final.returncode == 0, final.stderr
        assert kills >= 3

        recorded = {r["recipient"]: r for r in map(json.loads, results.read_text().splitlines())}
        assert list(recorded) == numbers  # every recipient has exactly one final result
        accepted = mock.recorder.accepted
        assert max(accepted.values()) == 1  # nobody received it twice
        ambiguous = {
            to
            for to, r in recorded.items()
            if not r["success"] and "may have been delivered" in r["error"]
        }
        for number in numbers:
            if recorded[number]["success"]:
                assert accepted[number] == 1
            elif number not in ambiguous:
                assert accepted[number] == 0
        assert len(ambiguous) <= kills * 2 * 32
    finally:
        mock.stop()


def test_recipients_file_formats(tmp_path: Path) -> None:
    csv_named = tmp_path / "a.csv"
    csv_named.write_text("name,msisdn\nAna,+91 98765 43210\nBo,917000000001\n,\n")
    assert list(inspect_recipients(csv_named)) == ["+91 98765 43210", "917000000001"]
    csv_plain = tmp_path / "b.csv"
    csv_plain.write_text("919876543210,Ana\n917000000001,Bo\n")
    assert list(inspect_recipients(csv_plain)) == ["919876543210", "917000000001"]
    csv_header = tmp_path / "c.csv"
    csv_header.write_text("mobile,name\n919876543210,Ana\n")
    assert list(inspect_recipients(csv_header)) == ["919876543210"]
    text = tmp_path / "d.txt"
    text.write_text("919876543210\n\n  917000000001  \n")
    assert list(inspect_recipients(text)) == ["919876543210", "917000000001"]


def test_mock_command_prints_its_url_and_token_serves_and_stops_on_ctrl_c() -> None:
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "gupshup_async", "mock", "--port", str(port), "--rate", "80"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(4)]
        assert f"http://127.0.0.1:{port}" in banner[0]
        assert "GUPSHUP_APP_TOKEN=mock-token" in banner[3]
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "919876543210",
                "type": "text", "text": {"body": "hi"}}  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/partner/app/mock-app/v3/message",
                                    json=body, headers={"Authorization": "mock-token"})  # fmt: skip
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert answer.status_code == 200
        assert answer.json()["messages"][0]["id"].startswith("gs-")
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert process.returncode == 0


def test_resend_ambiguous_sends_again_only_when_asked(tmp_path: Path) -> None:
    to, journal, results = tmp_path / "to.csv", tmp_path / "j.sqlite3", tmp_path / "r.jsonl"
    numbers = _numbers(to, 3)
    mock = MockGupshupServer(faults=FaultPlan(schedule={numbers[1]: ["504", "ok"]}))
    mock.start()
    try:
        args = _command(to, "--text", "x", "--journal", journal, "--results", results)
        first = _run(args, _env(mock))
        assert first.returncode == 0, first.stderr
        assert "ambiguous    1" in first.stdout
        again = _run(args, _env(mock))
        assert mock.recorder.attempts[numbers[1]] == 1  # a plain resume leaves it alone
        assert "ambiguous    1" in again.stdout
        resent = _run([*args, "--resend-ambiguous"], _env(mock))
        assert resent.returncode == 0, resent.stderr
        assert mock.recorder.attempts[numbers[1]] == 2
        recorded = [json.loads(line) for line in results.read_text().splitlines()]
        assert [r["success"] for r in recorded] == [True, True, True]
        assert set(mock.recorder.accepted.values()) == {1}
    finally:
        mock.stop()


def test_a_refused_token_stops_the_campaign_and_leaves_the_rest_pending(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to, journal, results = tmp_path / "to.csv", tmp_path / "j.sqlite3", tmp_path / "r.jsonl"
    _numbers(to, 2000)
    args = _command(to, "--text", "x", "--rate", "1000", "--journal", journal, "--results", results)
    wrong = _run(args, _env(server, GUPSHUP_APP_TOKEN="expired-token"))

    assert wrong.returncode == 1, wrong.stderr
    assert "Campaign stopped: the API answered HTTP 401" in wrong.stdout
    assert "not finished 2000" in wrong.stdout
    assert results.read_text() == ""  # nobody got a final result: all still pending
    assert "expired-token" not in wrong.stdout + wrong.stderr
    fixed = _run(args, _env(server))
    assert fixed.returncode == 0, fixed.stderr
    assert server.recorder.total_accepted == 2000


def test_demo_runs_to_its_summary_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gupshup_async", "demo", "--recipients", "400", "--rate", "2000"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Campaign finished: 405 recipient(s)" in done.stdout
    assert "ambiguous    1" in done.stdout  # the one scheduled 504
    assert "invalid      3" in done.stdout
    assert "duplicates   2" in done.stdout
    assert "each recipient at most once" in done.stdout


def test_the_default_demo_reaches_its_whole_funnel() -> None:
    """The README's main job at its full size: 5 000 recipients and ~20 000 webhooks."""
    done = subprocess.run(
        [sys.executable, "-m", "gupshup_async", "demo", "--no-progress"],
        capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Campaign finished: 5005 recipient(s)" in done.stdout
    assert "Delivery funnel" in done.stdout
    assert "still had webhooks" not in done.stdout
    assert "Accepted by Gupshup: 4999" in done.stdout
