"""`gupshup-async report`: the funnel counts each recipient at its furthest status."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gupshup_async import Outcome
from gupshup_async.cli import main
from gupshup_async.cli._demo import DEMO_DELIVERY
from gupshup_async.journal import Journal
from gupshup_async.webhooks import parse_events, reconcile
from gupshup_async.webhooks.reconcile import callback_key

NUMBERS = [f"91700000000{i}" for i in range(8)]


def _status(gs_id: str, word: str, **extra: Any) -> dict[str, Any]:
    item = {
        "gs_id": gs_id,
        "id": f"wamid.{gs_id}",
        "status": word,
        "timestamp": 1710941393,
        **extra,
    }
    return {"entry": [{"changes": [{"field": "messages", "value": {"statuses": [item]}}]}]}


async def _journal(path: Path) -> None:
    """8 recipients + 1 invalid: read, delivered, sent, enqueued only, failed 131047, failed
    131026, an ambiguous settled as delivered, an ambiguous never settled."""
    journal = Journal(path)
    journal.bind({"message_sha256": "m", "recipients_sha256": "r"})
    journal.load([*NUMBERS, "12"])
    list(journal.pending())
    for i, to in enumerate(NUMBERS):
        await journal.mark_sending(to)
        if i < 6:
            result: Any = {
                "recipient": to,
                "success": True,
                "result": {"messages": [{"id": f"gs-{i}"}]},
            }
            journal.record(Outcome(i, to, to, "sent", result))
        else:
            result = {
                "recipient": to,
                "success": False,
                "error": "HTTP 504 (may have been delivered)",
            }
            journal.record(Outcome(i, to, to, "ambiguous", result))
    journal.flush()
    events = [
        _status("gs-0", "sent"), _status("gs-0", "read"), _status("gs-0", "delivered"),
        _status("gs-1", "delivered"), _status("gs-2", "sent"), _status("gs-3", "enqueued"),
        _status("gs-4", "failed", errors=[{"code": 131047, "title": "Re-engagement message"}]),
        _status("gs-5", "failed", code=131026, reason="Message undeliverable"),
        _status("gs-6", "delivered", biz_opaque_callback_data=callback_key(journal.callback_tag, 6)),
    ]  # fmt: skip
    for body in events:
        reconcile(journal, parse_events(body))
    journal.close()


async def test_report_json_counts_each_recipient_at_its_furthest_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _journal(tmp_path / "j.sqlite3")
    assert main(["report", str(tmp_path / "j.sqlite3"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "recipients": 9, "accepted": 7, "sent": 4, "delivered": 3, "read": 1, "failed": 2,
        "failed_by_code": {"131026": 1, "131047": 1},
        "ambiguous_settled": 1, "ambiguous_unsettled": 1,
        "no_status": 1, "not_accepted": {"invalid": 1}, "unmatched_events": 0,
    }  # fmt: skip


async def test_report_text_names_each_code_with_its_meaning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _journal(tmp_path / "j.sqlite3")
    assert main(["report", str(tmp_path / "j.sqlite3")]) == 0
    text = capsys.readouterr().out
    assert "Accepted by Gupshup: 7" in text
    assert re.search(r"delivered\s+3\s+42\.9%", text)
    assert re.search(r"131047\s+1\s+more than 24 h since the user last wrote", text)
    assert re.search(r"131026\s+1\s+undeliverable", text)
    assert "Ambiguous sends: 1 settled by webhooks, 1 unsettled" in text


async def test_failures_csv_lists_who_did_not_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _journal(tmp_path / "j.sqlite3")
    assert main(["report", str(tmp_path / "j.sqlite3"), "--failures", str(tmp_path / "f.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "f.csv").read_text().splitlines()))
    assert [(r["recipient"], r["state"], r["delivery"], r["failure_code"]) for r in rows] == [
        (NUMBERS[4], "sent", "failed", "131047"),
        (NUMBERS[5], "sent", "failed", "131026"),
        (NUMBERS[7], "ambiguous", "", ""),
        ("12", "invalid", "", ""),
    ]
    assert rows[0]["failure_title"] == "Re-engagement message"
    assert rows[0]["meaning"].startswith("more than 24 h")
    assert "4 failure rows written" in capsys.readouterr().out


async def test_the_campaign_results_file_gains_the_delivery_fields(tmp_path: Path) -> None:
    from gupshup_async.cli._campaign import write_results

    await _journal(tmp_path / "j.sqlite3")
    journal = Journal(tmp_path / "j.sqlite3")
    write_results(journal, tmp_path / "r.jsonl")
    journal.close()
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert rows[4]["delivery"] == "failed"
    assert (rows[4]["failure_code"], rows[4]["failure_title"]) == (131047, "Re-engagement message")
    assert rows[6]["delivery"] == "delivered"
    assert rows[6]["success"] is False  # the POST answer was lost; the webhook says it arrived
    assert "delivery" not in rows[7]


def test_demo_ends_with_the_funnel_the_mock_planned(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gupshup_async", "demo", "--recipients", "300", "--rate", "2000", "--no-progress"],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    journal = re.search(r"Delivery funnel \(gupshup-async report (.+)\):", done.stdout)
    assert journal is not None, done.stdout
    with sqlite3.connect(journal.group(1)) as db:
        accepted = [
            row[0] for row in db.execute("SELECT digits FROM recipients WHERE state = 'sent'")
        ]
    expected = DEMO_DELIVERY.expected_funnel(accepted)
    assert f"Accepted by Gupshup: {expected['accepted']}" in done.stdout
    assert re.search(rf"read\s+{expected['read']}\s", done.stdout)
    assert re.search(rf"failed\s+{expected['failed']}\s", done.stdout)


# ---------------------------------------------------------------- a file that is not a journal


def _sqlite_file(path: Path, *, wal: bool) -> sqlite3.Connection:
    """An SQLite database of something else (contacts, no recipients table), left open."""
    db = sqlite3.connect(path, isolation_level=None)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE contacts (phone TEXT)")
    db.execute("INSERT INTO contacts VALUES ('917000000000')")
    return db


def _state(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of `directory`: its bytes and modification time (ns)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


NOT_A_JOURNAL = {
    "a CSV": "not an SQLite file",
    "a text file": "not an SQLite file",
    "an empty file": "an empty file",
    "an SQLite file": "an SQLite database without a recipients table",
    "a WAL SQLite file": "an SQLite database without a recipients table",
    "a WAL SQLite file in use": "an SQLite database without a recipients table",
}


@pytest.mark.parametrize("kind", sorted(NOT_A_JOURNAL))
def test_report_on_a_file_that_is_not_a_journal_exits_2_and_leaves_it_as_it_was(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "given"
    holder = None
    if kind == "a CSV":
        path.write_text("phone,name\n917000000000,A\n")
    elif kind == "a text file":
        path.write_text("send these tomorrow\n")
    elif kind == "an empty file":
        path.touch()
    else:
        holder = _sqlite_file(path, wal=kind != "an SQLite file")
        if kind != "a WAL SQLite file in use":
            holder.close()  # closed: no -wal or -shm left beside it
            holder = None
    try:
        before = _state(tmp_path)
        done = subprocess.run([sys.executable, "-m", "gupshup_async", "report", str(path)],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        after = _state(tmp_path)
    finally:
        if holder is not None:
            holder.close()
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"gupshup-async: error: journal {path} is not a campaign journal ({NOT_A_JOURNAL[kind]})\n"
    )
    assert done.stdout == ""
    assert sorted(after) == sorted(before)  # no -wal, -shm or .lock made
    if kind == "a WAL SQLite file in use":  # readers mark the holder's shared memory, by design
        del before["given-shm"], after["given-shm"]
    assert after == before  # same bytes, same times


def test_report_on_a_file_that_does_not_exist_exits_2_and_makes_none(tmp_path: Path) -> None:
    path = tmp_path / "nothing.sqlite3"
    done = subprocess.run([sys.executable, "-m", "gupshup_async", "report", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"gupshup-async: error: journal {path} does not exist\n"
    assert list(tmp_path.iterdir()) == []


def test_report_reads_a_journal_a_running_campaign_holds_open(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)  # open, as while a campaign runs: its tables are in the -wal yet
    try:
        journal.bind({"message_sha256": "m", "recipients_sha256": "r"})
        journal.load(NUMBERS)
        report = [sys.executable, "-m", "gupshup_async", "report", str(path), "--json"]
        done = subprocess.run(report, capture_output=True, text=True, timeout=60, check=False)
    finally:
        journal.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["recipients"] == len(NUMBERS)


def test_report_on_a_directory_says_so(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gupshup_async", "report", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        f"gupshup-async: error: journal {tmp_path} is a directory, not a journal file\n"
    )
