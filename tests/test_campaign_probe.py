"""The campaign command probed as an operator who makes mistakes: one journal under two names,
an output path that is also an input, recipients piped in. Console script in a subprocess,
loopback mock, counts from the mock."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gupshup_async.mock import FaultPlan, MockGupshupServer

from .cli_support import campaign_command, cli_env, one_error_line, run, write_numbers


@pytest.fixture(scope="module")
def server() -> Iterator[MockGupshupServer]:
    mock = MockGupshupServer()
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(autouse=True)
def _fresh_counts(server: MockGupshupServer) -> None:
    server.recorder.reset()


def _wait_for(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


# ---------------------------------------------------------------- one journal, two names


@pytest.mark.parametrize("alias", ["symlink", "hard link"])
def test_a_second_name_for_a_held_journal_is_refused_and_nobody_gets_it_twice(
    tmp_path: Path, alias: str
) -> None:
    mock = MockGupshupServer(faults=FaultPlan(latency=0.2))
    mock.start()
    try:
        to, journal, other = tmp_path / "to.csv", tmp_path / "j.sqlite3", tmp_path / "k.sqlite3"
        write_numbers(to, 100)
        first = subprocess.Popen(
            campaign_command(to, "--text", "x", "--concurrency", "8", "--journal", journal),
            env=cli_env(mock), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _wait_for(lambda: mock.recorder.total_attempts >= 8)
        if alias == "symlink":
            other.symlink_to(journal)
        else:
            os.link(journal, other)
        second = run(
            campaign_command(to, "--text", "x", "--concurrency", "8", "--journal", other),
            cli_env(mock),
        )
        first.communicate(timeout=60)

        assert second.returncode == 2, second.stdout
        assert "nothing was sent" in one_error_line(second.stderr)
        assert first.returncode == 0
        assert mock.recorder.total_accepted == 100
        assert set(mock.recorder.accepted.values()) == {1}  # nobody received it twice
    finally:
        mock.stop()


# ---------------------------------------------------------------- an output that is an input


@pytest.mark.parametrize(
    ("results", "journal", "expected"),
    [
        ("to.csv", None, "--results {tmp}/to.csv is the recipients file"),
        ("./to.csv", None, "--results to.csv is the recipients file"),
        ("j.sqlite3", "j.sqlite3", "--results {tmp}/j.sqlite3 is the journal"),
        (None, "to.csv", "--journal {tmp}/to.csv is the recipients file"),
    ],
)
def test_an_output_path_that_is_also_an_input_is_refused_before_anything_is_written(
    server: MockGupshupServer,
    tmp_path: Path,
    results: str | None,
    journal: str | None,
    expected: str,
) -> None:
    to = tmp_path / "to.csv"
    write_numbers(to, 5)
    original = to.read_bytes()
    argv: list[str | Path] = [to, "--text", "x"]
    if results is not None:
        argv += ["--results", results if results.startswith(".") else tmp_path / results]
    if journal is not None:
        argv += ["--journal", tmp_path / journal if results != journal else journal]
    env = cli_env(server)
    done = subprocess.run(campaign_command(*argv), env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip

    assert done.returncode == 2, done.stdout
    assert expected.format(tmp=tmp_path) in one_error_line(done.stderr)
    assert to.read_bytes() == original  # the operator's list is intact
    assert server.recorder.total_attempts == 0


# ---------------------------------------------------------------- recipients that can be read once


def test_recipients_from_a_pipe_are_refused_not_silently_dropped(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    numbers = write_numbers(tmp_path / "to.csv", 6_000, header=None)  # past the 64 KiB sniff
    done = subprocess.run(
        campaign_command("/dev/stdin", "--text", "x"),
        input="\n".join(numbers) + "\n", env=cli_env(server), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 2, done.stdout
    line = one_error_line(done.stderr)
    assert "recipients file /dev/stdin is not a regular file" in line
    assert server.recorder.total_attempts == 0


# ---------------------------------------------------------------- failures about the channel


def _states(journal: Path) -> dict[str, int]:
    with sqlite3.connect(journal) as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))


@pytest.mark.parametrize("mistake", ["503 storm", "wrong path in the base URL"])
def test_a_503_storm_or_a_wrong_url_path_leaves_everyone_pending_with_exit_3(
    tmp_path: Path, mistake: str
) -> None:
    to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
    numbers = write_numbers(to, 30)
    args = campaign_command(to, "--text", "x", "--journal", journal, "--max-retries", "0")
    storm = mistake == "503 storm"
    broken = MockGupshupServer(faults=FaultPlan(rates={"503": 1.0} if storm else {}))
    broken.start()
    try:
        url = broken.base_url if storm else broken.base_url + "/v3"
        first = run(args, cli_env(broken, GUPSHUP_BASE_URL=url))
    finally:
        broken.stop()
    assert first.returncode == 3, first.stdout + first.stderr
    assert "Campaign stopped: the API could not be used" in first.stdout
    assert _states(journal) == {"pending": 30}  # nobody written off as "failed"

    healthy = MockGupshupServer()
    healthy.start()
    try:
        rerun = run(args, cli_env(healthy))
    finally:
        healthy.stop()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert sorted(healthy.recorder.accepted) == sorted(numbers)
    assert set(healthy.recorder.accepted.values()) == {1}


# ---------------------------------------------------------------- storage that fails


def test_a_journal_that_cannot_be_written_ends_in_one_line_not_a_traceback(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
    write_numbers(to, 3_000)
    # A full disk, for a user without root: files may not grow past 100 KiB.
    limited = ["bash", "-c", 'ulimit -f 100; exec "$@"', "campaign",
               *campaign_command(to, "--text", "x", "--journal", journal)]  # fmt: skip
    done = run(limited, cli_env(server))

    assert done.returncode == 4, done.stdout + done.stderr
    line = one_error_line(done.stderr)
    assert "could not be written" in line
    assert "disk I/O error" in line
    assert server.recorder.total_attempts == 0


def test_a_file_that_is_not_a_journal_is_refused_in_one_line_and_left_alone(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to, other = tmp_path / "to.csv", tmp_path / "results.jsonl"
    write_numbers(to, 5)
    other.write_text('{"recipient": "917000000000", "success": true}\n' * 50)
    before = other.read_bytes()
    done = run(campaign_command(to, "--text", "x", "--journal", other), cli_env(server))

    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--journal {other} is not a campaign journal" in one_error_line(done.stderr)
    assert other.read_bytes() == before
    assert server.recorder.total_attempts == 0


# ---------------------------------------------------------------- --dry-run and encodings


def test_dry_run_finds_an_unwritable_results_file(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to = tmp_path / "to.csv"
    write_numbers(to, 5)
    done = run(campaign_command(to, "--dry-run", "--text", "x", "--results", "/proc/r.jsonl"),
               cli_env())  # fmt: skip
    assert done.returncode == 2, done.stdout
    assert "--results /proc/r.jsonl" in one_error_line(done.stderr)


def test_a_utf16_file_is_named_as_such_and_read_whole_with_its_encoding(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to = tmp_path / "to.txt"  # Excel's "Unicode Text": UTF-16, tabs; past the 64 KiB sniff
    rows = [f"9170{i:08d}\tName {i}" for i in range(4_000)]
    to.write_text("Phone\tName\n" + "\n".join(rows) + "\n", encoding="utf-16")

    plain = run(campaign_command(to, "--dry-run", "--text", "x"), cli_env())
    assert plain.returncode == 2
    assert "add --encoding utf-16" in one_error_line(plain.stderr)

    done = run(campaign_command(to, "--dry-run", "--text", "x", "--encoding", "utf-16"), cli_env())
    assert done.returncode == 0, done.stderr
    assert "Dry run: 4000 recipient(s) read" in done.stdout
    assert "to send      4000" in done.stdout


# ---------------------------------------------------------------- an API that never answers


def test_a_server_that_never_answers_stops_the_campaign_instead_of_making_everyone_ambiguous(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
    write_numbers(to, 200)
    held: list[socket.socket] = []
    with socket.socket() as silent:  # takes every request, answers none (a wedged proxy)
        silent.bind(("127.0.0.1", 0))
        silent.listen(256)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        def accept() -> None:
            with contextlib.suppress(OSError):
                while True:
                    held.append(silent.accept()[0])

        threading.Thread(target=accept, daemon=True).start()
        args = campaign_command(to, "--text", "x", "--journal", journal, "--timeout", "0.3",
                                "--concurrency", "4")  # fmt: skip
        done = run(args, cli_env(server, GUPSHUP_BASE_URL=url))
    for connection in held:
        connection.close()

    assert done.returncode == 3, done.stdout + done.stderr
    assert "Campaign stopped: the API could not be used (20 sends in a row" in done.stdout
    states = _states(journal)
    assert 20 <= states["ambiguous"] <= 20 + 4  # what was on the wire may have gone out
    assert states["pending"] == 200 - states["ambiguous"]  # the rest waits for a rerun


# ---------------------------------------------------------------- spreadsheet text markers


def test_excel_text_markers_around_a_number_are_dropped_not_counted_invalid(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to = tmp_path / "to.csv"  # '... and ="..." are how spreadsheets keep a number as text
    to.write_text('name,phone\nA,\'919876543210\nB,"=""919876543211"""\nC,+91 98765 43212\n')
    done = run(campaign_command(to, "--text", "x"), cli_env(server))

    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(server.recorder.accepted) == ["919876543210", "919876543211", "919876543212"]
    assert "invalid      0" in done.stdout
