"""Statuses into the journal: forward only, each event once, ambiguous sends settled."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gupshup_async import Outcome
from gupshup_async.journal import Journal
from gupshup_async.journal.delivery import DeliveryJournal
from gupshup_async.webhooks import parse_events
from gupshup_async.webhooks.reconcile import callback_key, reconcile, row_from_callback

IDENTITY = {"message_sha256": "m", "recipients_sha256": "r"}
A, B, C = "917000000001", "917000000002", "917000000003"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.bind(IDENTITY)
    journal.load([A, B, C])
    yield journal
    journal.close()


def answer(message_id: str, to: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": message_id}]}  # fmt: skip


async def finish(journal: Journal, to: str, status: str, message_id: str | None = None) -> None:
    list(journal.pending())
    await journal.mark_sending(to)
    if status == "sent":
        assert message_id is not None
        result: Any = {"recipient": to, "success": True, "result": answer(message_id, to)}
    else:
        result = {"recipient": to, "success": False, "error": "HTTP 504 (may have been delivered)"}
    journal.record(Outcome(0, to, to, status, result))  # type: ignore[arg-type]
    journal.flush()


def status(
    gs_id: str | None, word: str, ts: int | str = 1710941393, **extra: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": f"wamid.{gs_id}", "recipient_id": "9170****001", "status": word, "timestamp": ts}  # fmt: skip
    if gs_id is not None:
        item["gs_id"] = gs_id
    item.update(extra)
    return {"gs_app_id": "app", "entry": [{"changes": [{"field": "messages", "value": {"statuses": [item]}}]}]}  # fmt: skip


def deliver(journal: Journal, *bodies: dict[str, Any]) -> list[bool]:
    return [fresh for body in bodies for fresh in reconcile(journal, parse_events(body))]


def row(journal: Journal, to: str) -> tuple[Any, ...]:
    found = journal._db.execute(
        "SELECT state, message_id, delivery, delivery_at, failure_code, failure_title "
        "FROM recipients WHERE recipient = ?",
        (to,),
    ).fetchone()
    return tuple(found)


async def test_the_message_id_of_a_send_is_kept_from_its_answer(journal: Journal) -> None:
    await finish(journal, A, "sent", "gs-a")
    assert row(journal, A) == ("sent", "gs-a", None, None, None, None)


async def test_statuses_move_forward_only_whatever_the_order(journal: Journal) -> None:
    await finish(journal, A, "sent", "gs-a")
    fresh = deliver(journal, status("gs-a", "read", 1710941400), status("gs-a", "sent", 1710941394),
                    status("gs-a", "delivered", "1710941395000"), status("gs-a", "enqueued"))  # fmt: skip
    assert fresh == [True, True, True, True]
    assert row(journal, A) == ("sent", "gs-a", "read", 1710941400.0, None, None)


async def test_a_repeated_delivery_is_stored_and_applied_once(journal: Journal) -> None:
    await finish(journal, A, "sent", "gs-a")
    assert deliver(journal, status("gs-a", "delivered", 1710941395)) == [True]
    assert deliver(journal, status("gs-a", "delivered", 1710941999)) == [False]
    assert row(journal, A)[2:4] == ("delivered", 1710941395.0)
    assert journal.event_count() == 1


async def test_a_failure_keeps_its_code_and_title(journal: Journal) -> None:
    await finish(journal, A, "sent", "gs-a")
    errors = [{"code": 131047, "title": "Re-engagement message", "message": "..."}]
    deliver(journal, status("gs-a", "sent"), status("gs-a", "failed", 1710941396, errors=errors))
    assert row(journal, A)[2:] == ("failed", 1710941396.0, 131047, "Re-engagement message")


async def test_failed_after_delivered_leaves_it_delivered(journal: Journal) -> None:
    await finish(journal, A, "sent", "gs-a")
    deliver(journal, status("gs-a", "delivered", 1710941395),
            status("gs-a", "failed", 1710941396, code=131026, reason="Message undeliverable"))  # fmt: skip
    assert row(journal, A)[2:] == ("delivered", 1710941395.0, None, None)
    assert journal.event_count() == 2  # the late failure is kept among the events


async def test_delivered_arriving_after_failed_wins_and_clears_the_failure(
    journal: Journal,
) -> None:
    await finish(journal, A, "sent", "gs-a")
    deliver(journal, status("gs-a", "failed", 1710941396, code=131026, reason="Message undeliverable"),
            status("gs-a", "delivered", 1710941395))  # fmt: skip
    assert row(journal, A)[2:] == ("delivered", 1710941395.0, None, None)


async def test_an_ambiguous_send_is_settled_by_its_callback_key(journal: Journal) -> None:
    await finish(journal, B, "ambiguous")
    key = callback_key(journal.callback_tag, 1)
    deliver(journal, status("gs-b", "delivered", 1710941395, biz_opaque_callback_data=key))
    assert row(journal, B) == ("ambiguous", "gs-b", "delivered", 1710941395.0, None, None)
    deliver(journal, status("gs-b", "read", 1710941399))  # now found by its message id too
    assert row(journal, B)[2] == "read"


async def test_another_campaigns_callback_key_settles_nothing(journal: Journal) -> None:
    await finish(journal, B, "ambiguous")
    deliver(journal, status("gs-x", "delivered", biz_opaque_callback_data="ga:0123456789ab:1"))
    assert row(journal, B) == ("ambiguous", None, None, None, None, None)
    assert journal.unapplied_events() == 1


def test_callback_keys_round_trip_and_refuse_strangers() -> None:
    assert row_from_callback(callback_key("c0ffee", 42), "c0ffee") == 42
    assert [row_from_callback(v, "c0ffee") for v in [None, "", "ga:c0ffee:x", "ga:beef:1", "order-9", "ga:c0ffee:-1"]] == [None] * 6  # fmt: skip


async def test_a_status_arriving_before_its_send_answer_is_applied_later(journal: Journal) -> None:
    list(journal.pending())
    await journal.mark_sending(C)
    deliver(journal, status("gs-c", "delivered", 1710941395))  # the answer is still in flight
    assert journal.unapplied_events() == 1
    assert journal.apply_unmatched() == 0
    result: Any = {"recipient": C, "success": True, "result": answer("gs-c", C)}
    journal.record(Outcome(2, C, C, "sent", result))
    journal.flush()
    assert journal.apply_unmatched() == 1
    assert row(journal, C)[:3] == ("sent", "gs-c", "delivered")
    assert journal.unapplied_events() == 0


async def test_resend_ambiguous_leaves_a_settled_recipient_alone(journal: Journal) -> None:
    await finish(journal, B, "ambiguous")
    deliver(journal, status("gs-b", "delivered", biz_opaque_callback_data=callback_key(journal.callback_tag, 1)))  # fmt: skip
    assert journal.settle_interrupted(resend_ambiguous=True) == 0
    assert journal.counts()["ambiguous"] == 1


async def test_results_rows_gain_the_delivery_fields_when_known(journal: Journal) -> None:
    await finish(journal, A, "sent", "gs-a")
    await finish(journal, B, "sent", "gs-b")
    deliver(journal, status("gs-a", "failed", 1710941396, errors=[{"code": 131047, "title": "Re-engagement message"}]))  # fmt: skip
    rows = list(journal.results())
    assert rows[0] == {"recipient": A, "success": True, "result": answer("gs-a", A),
                       "delivery": "failed", "delivery_at": "2024-03-20T13:29:56+00:00",
                       "failure_code": 131047, "failure_title": "Re-engagement message"}  # fmt: skip
    assert rows[1] == {"recipient": B, "success": True, "result": answer("gs-b", B)}


async def test_an_older_journal_file_gains_the_delivery_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE campaign (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE recipients (idx INTEGER PRIMARY KEY, recipient TEXT NOT NULL, digits TEXT,"
        " state TEXT NOT NULL, error TEXT, code INTEGER, result TEXT,"
        " runs INTEGER NOT NULL DEFAULT 0, updated REAL);"
        "INSERT INTO campaign VALUES ('message_sha256', 'm'), ('recipients_sha256', 'r'), ('loaded', '1');"
        f"INSERT INTO recipients (idx, recipient, digits, state, result) VALUES"
        f" (0, '{A}', '{A}', 'sent', '{{\"messages\": [{{\"id\": \"gs-old\"}}]}}');"
    )
    old.commit()
    old.close()
    journal = Journal(path)
    try:
        assert journal.bind(IDENTITY) is True
        deliver(journal, status("gs-old", "read", 1710941400))
        assert row(journal, A) == ("sent", "gs-old", "read", 1710941400.0, None, None)
    finally:
        journal.close()
    again = Journal(path)  # opening it again changes nothing
    assert row(again, A)[2] == "read"
    again.close()


async def test_one_batch_with_repeats_and_a_settling_key_applies_each_once(
    journal: Journal,
) -> None:
    await finish(journal, A, "sent", "gs-a")
    await finish(journal, B, "ambiguous")
    key = callback_key(journal.callback_tag, 1)
    bodies = [
        status("gs-a", "delivered", 1710941395),
        status("gs-a", "delivered", 1710941999),
        status("gs-b", "sent", 1710941394, biz_opaque_callback_data=key),
        status("gs-b", "read", 1710941398),
    ]  # found through the key given just before
    events = [event for body in bodies for event in parse_events(body)]
    assert reconcile(journal, events) == [True, False, True, True]
    assert row(journal, A)[2:4] == ("delivered", 1710941395.0)
    assert row(journal, B) == ("ambiguous", "gs-b", "read", 1710941398.0, None, None)
    assert journal.unapplied_events() == 0


async def test_a_receiver_may_open_the_journal_first_and_beside_the_campaign(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new.sqlite3"
    with DeliveryJournal(path) as early:  # `webhooks serve` started before the campaign
        assert reconcile(early, parse_events(status("gs-a", "delivered", 1710941395))) == [True]
    assert path.stat().st_mode & 0o777 == 0o600  # phone numbers and answers: owner only
    journal = Journal(path)
    assert journal.bind(IDENTITY) is False  # still a new campaign's journal
    journal.load([A])
    with DeliveryJournal(path) as beside:  # while the campaign holds its journal open
        await finish(journal, A, "sent", "gs-a")
        assert beside.apply_unmatched() == 1
    assert row(journal, A)[:3] == ("sent", "gs-a", "delivered")
    journal.close()
