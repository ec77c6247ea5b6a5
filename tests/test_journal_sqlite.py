from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gupshup_async import Outcome
from gupshup_async.journal import JournalBusyError
from gupshup_async.journal.sqlite import CampaignMismatchError, Journal

IDENTITY = {"message_sha256": "m1", "recipients_sha256": "r1"}


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.bind(IDENTITY)
    yield journal
    journal.close()


def _sent(digits: str, to: str) -> Outcome:
    result = {"messages": [{"id": f"gs-{digits}"}]}
    return Outcome(
        0, to, digits, "sent", {"recipient": to, "success": True, "result": result}, None, 1, 0.01
    )


def test_load_classifies_pending_invalid_and_duplicate(journal: Journal) -> None:
    journal.load(["+91 98765 43210", "12", "919876543210", "917000000000"])
    assert journal.counts() == {"pending": 2, "invalid": 1, "duplicate": 1}
    assert list(journal.pending()) == ["+91 98765 43210", "917000000000"]
    assert journal.loaded


def test_load_writes_every_row_of_batches_larger_than_one_statement(journal: Journal) -> None:
    """250 numbers: two 100-row INSERTs and 50 single ones, repeats and bad numbers between."""
    numbers = [f"+91 70000 {i:05d}" if i % 7 else "12" for i in range(250)]
    numbers[200] = numbers[10]  # a repeat in the remainder, of a row in the first statement
    journal.load(numbers)
    rows = journal._db.execute(
        "SELECT idx, recipient, digits, state, error IS NULL FROM recipients ORDER BY idx"
    ).fetchall()
    expected: list[tuple[int, str, str | None, str, bool]] = []
    for idx, to in enumerate(numbers):
        if to == "12":
            expected.append((idx, to, None, "invalid", False))
        elif idx == 200:
            expected.append((idx, to, "917000000010", "duplicate", False))
        else:
            expected.append((idx, to, f"9170000{idx:05d}", "pending", True))
    assert rows == expected


def test_load_after_a_kill_mid_load_keeps_what_is_there(journal: Journal) -> None:
    journal._insert([(0, "919876543210", "919876543210")], [])  # as if killed after one batch
    journal.load(["919876543210", "917000000000"])
    assert journal.counts() == {"pending": 2}


def test_bind_refuses_another_campaign(tmp_path: Path) -> None:
    first = Journal(tmp_path / "j.sqlite3")
    assert first.bind(IDENTITY) is False
    first.close()
    again = Journal(tmp_path / "j.sqlite3")
    assert again.bind(IDENTITY) is True
    with pytest.raises(CampaignMismatchError, match="message_sha256"):
        again.bind({**IDENTITY, "message_sha256": "other"})
    again.close()


async def test_marks_of_one_loop_turn_commit_in_one_transaction(journal: Journal) -> None:
    journal.load([f"9170000000{i:02d}" for i in range(50)])
    commits: list[str] = []
    journal._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    await asyncio.gather(*(journal.mark_sending(f"9170000000{i:02d}") for i in range(50)))
    assert commits == ["COMMIT"]
    assert journal.counts() == {"sending": 50}


async def test_a_group_of_more_marks_than_one_statement_takes_marks_each_row_once(
    journal: Journal,
) -> None:
    numbers = [f"91700000{i:04d}" for i in range(150)]  # more than 64 a statement, twice
    journal.load(["919999999999", *numbers])
    assert list(journal.pending())[1:] == numbers
    await asyncio.gather(*(journal.mark_sending(n) for n in numbers))
    rows = journal._db.execute("SELECT state, runs FROM recipients ORDER BY idx").fetchall()
    assert rows == [("pending", 0)] + [("sending", 1)] * 150


async def test_final_states_and_results_in_file_order(journal: Journal) -> None:
    journal.load(["917000000002", "bad", "917000000001"])
    await journal.mark_sending("917000000001")
    await journal.mark_sending("917000000002")
    journal.record(_sent("917000000001", "917000000001"))
    failure = Outcome(0, "917000000002", "917000000002", "failed",
                      {"recipient": "917000000002", "success": False, "error": "HTTP 400: nope"})  # fmt: skip
    journal.record(failure)
    journal.flush()
    assert journal.counts() == {"sent": 1, "failed": 1, "invalid": 1}
    results = list(journal.results())
    assert [r["recipient"] for r in results] == ["917000000002", "bad", "917000000001"]
    assert results[0] == {"recipient": "917000000002", "success": False, "error": "HTTP 400: nope"}
    assert results[2] == {
        "recipient": "917000000001",
        "success": True,
        "result": {"messages": [{"id": "gs-917000000001"}]},
    }


async def test_interrupted_sends_become_ambiguous_unless_resent(journal: Journal) -> None:
    journal.load(["917000000001", "917000000002"])
    await journal.mark_sending("917000000001")
    assert journal.settle_interrupted(resend_ambiguous=False) == 1
    assert journal.counts() == {"ambiguous": 1, "pending": 1}
    assert journal.settle_interrupted(resend_ambiguous=True) == 1
    assert journal.counts() == {"pending": 2}


async def test_not_sent_goes_back_to_pending(journal: Journal) -> None:
    journal.load(["917000000001"])
    await journal.mark_sending("917000000001")
    outcome = Outcome(0, "917000000001", "917000000001", "not_sent",
                      {"recipient": "917000000001", "success": False, "error": "cancelled"})  # fmt: skip
    journal.record(outcome)
    journal.flush()
    assert journal.counts() == {"pending": 1}


def test_no_token_in_the_journal_file(tmp_path: Path) -> None:
    # The journal API takes no token at all; the file holds recipients, states and answers only.
    journal = Journal(tmp_path / "j.sqlite3")
    journal.bind(IDENTITY)
    tables = {
        row[0] for row in journal._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert tables == {"campaign", "recipients", "webhook_events"}  # events: bodies, no headers
    columns = {row[1] for row in journal._db.execute("PRAGMA table_info(campaign)")}
    assert columns == {"key", "value"}
    journal.close()


async def test_a_failed_commit_stops_further_sends(journal: Journal) -> None:
    journal.load(["917000000001", "917000000002"])
    list(journal.pending())
    journal._db.execute("PRAGMA query_only = ON")  # every write now fails, like a full disk
    with pytest.raises(sqlite3.OperationalError):
        await journal.mark_sending("917000000001")
    with pytest.raises(sqlite3.OperationalError):
        await journal.mark_sending("917000000002")
    journal._db.execute("PRAGMA query_only = OFF")


async def test_a_recipient_that_is_not_pending_is_never_marked(journal: Journal) -> None:
    journal.load(["917000000001"])
    with pytest.raises(LookupError, match="not pending"):
        await journal.mark_sending("917000000009")


def test_a_second_journal_on_the_same_file_is_refused_until_the_first_closes(
    tmp_path: Path,
) -> None:
    first = Journal(tmp_path / "j.sqlite3")
    with pytest.raises(JournalBusyError, match=f"pid {os.getpid()} on host {socket.gethostname()}"):
        Journal(tmp_path / "j.sqlite3")
    first.close()
    second = Journal(tmp_path / "j.sqlite3")
    second.close()


def test_journal_files_are_created_for_the_owner_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.bind(IDENTITY)
    journal.load(["919876543210"])
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in tmp_path.iterdir()}
    journal.close()
    assert modes == {"j.sqlite3": "0o600", "j.sqlite3.lock": "0o600", "j.sqlite3-wal": "0o600",
                     "j.sqlite3-shm": "0o600"}  # fmt: skip


def test_requeue_failed_leaves_ambiguous_alone(journal: Journal) -> None:
    journal.load(["919876543210", "917000000000", "917000000001"])
    with sqlite3.connect(journal.path) as db:
        db.execute("UPDATE recipients SET state = 'failed', error = 'x' WHERE idx = 0")
        db.execute("UPDATE recipients SET state = 'ambiguous', error = 'y' WHERE idx = 1")
    assert journal.requeue_failed() == 1
    assert journal.counts() == {"pending": 2, "ambiguous": 1}


async def test_a_final_state_writes_the_message_id_itself_and_never_erases_one(
    journal: Journal,
) -> None:
    journal.load(["917000000001", "917000000002", "917000000003"])
    for digits in ("917000000001", "917000000002", "917000000003"):
        await journal.mark_sending(digits)
    # Without the trigger that reads it out of the stored answer, the id is still written.
    journal._db.execute("DROP TRIGGER recipients_message_id_from_result")
    # A status webhook settled row 2 by its callback key before its send's answer came back.
    journal._db.execute("UPDATE recipients SET message_id = 'gs-hook' WHERE idx = 1")
    journal.record(_sent("917000000001", "917000000001"))
    ambiguous = Outcome(1, "917000000002", "917000000002", "ambiguous",
                        {"recipient": "917000000002", "success": False, "error": "timed out"})  # fmt: skip
    journal.record(ambiguous)
    odd = Outcome(2, "917000000003", "917000000003", "sent",
                  {"recipient": "917000000003", "success": True, "result": {"messages": []}})  # fmt: skip
    journal.record(odd)
    journal.flush()
    ids = journal._db.execute("SELECT idx, message_id FROM recipients ORDER BY idx").fetchall()
    assert ids == [(0, "gs-917000000001"), (1, "gs-hook"), (2, None)]


def test_load_marks_a_repeat_against_rows_an_interrupted_load_left(journal: Journal) -> None:
    # Killed after its first batch: the number's first row is already in, its repeat is not.
    journal._insert(
        [(0, "+91 98765 43210", "919876543210"), (1, "917000000000", "917000000000")], []
    )
    journal.load(["+91 98765 43210", "917000000000", "919876543210", "0917000000000"])
    states = journal._db.execute("SELECT idx, state FROM recipients ORDER BY idx").fetchall()
    # A leading zero makes another number (the API would be sent both), as before.
    assert states == [(0, "pending"), (1, "pending"), (2, "duplicate"), (3, "pending")]


def test_message_ids_are_indexed_for_sent_rows_only_and_lookups_use_it(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "j.sqlite3")  # a journal of an earlier version
    old.execute("CREATE TABLE recipients (idx INTEGER PRIMARY KEY, recipient TEXT NOT NULL, "
                "digits TEXT, state TEXT NOT NULL, error TEXT, code INTEGER, result TEXT, "
                "runs INTEGER NOT NULL DEFAULT 0, updated REAL, message_id TEXT)")  # fmt: skip
    old.execute("CREATE INDEX recipients_message_id ON recipients (message_id)")
    old.close()
    journal = Journal(tmp_path / "j.sqlite3")
    indexes = {row[0]: row[1] for row in journal._db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'recipients'")}  # fmt: skip
    assert "recipients_message_id" not in indexes  # every unsent row's NULL was an entry
    assert indexes["recipients_sent_message_id"].endswith("WHERE message_id IS NOT NULL")
    for query in (
        "SELECT idx FROM recipients WHERE message_id = 'gs-1'",
        "SELECT e.rowid, r.idx FROM webhook_events AS e "
        "JOIN recipients AS r ON r.message_id = e.message_id WHERE e.applied = 0",
    ):
        plan = str(journal._db.execute(f"EXPLAIN QUERY PLAN {query}").fetchall())
        assert "USING COVERING INDEX recipients_sent_message_id" in plan, plan
    journal.close()


async def test_a_sent_answer_is_kept_as_the_api_wrote_it(journal: Journal) -> None:
    journal.load(["917000000001", "917000000002"])
    list(journal.pending())
    text = '{"messages": [{"id": "gs-1"}],  "price": 1.50, "note": "caf\u00e9"}'
    result = {
        "recipient": "917000000001",
        "success": True,
        "result": {"messages": [{"id": "gs-1"}]},
    }
    await journal.mark_sending("917000000001")
    journal.record(Outcome(0, "917000000001", "917000000001", "sent", result, raw_json=text))  # type: ignore[arg-type]
    await journal.mark_sending("917000000002")
    journal.record(_sent("917000000002", "917000000002"))  # no text: the parsed answer, encoded
    journal.flush()
    stored = journal._db.execute(
        "SELECT result, message_id FROM recipients ORDER BY idx"
    ).fetchall()
    assert stored == [
        (text, "gs-1"),
        ('{"messages": [{"id": "gs-917000000002"}]}', "gs-917000000002"),
    ]
    assert [row["result"] for row in journal.results()] == [  # type: ignore[typeddict-item]
        {"messages": [{"id": "gs-1"}], "price": 1.5, "note": "caf\u00e9"},
        {"messages": [{"id": "gs-917000000002"}]},
    ]
