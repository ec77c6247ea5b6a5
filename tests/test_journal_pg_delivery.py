"""Delivery truth on the Postgres journal, against a real server: each event once (also from
two receivers at once), statuses forward only, early events kept, ambiguous sends settled."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from gupshup_async import Outcome
from gupshup_async.journal._pg_delivery import PostgresDelivery
from gupshup_async.journal.postgres import PostgresJournal, PostgresStore
from gupshup_async.webhooks import parse_events
from gupshup_async.webhooks.reconcile import event_rows, postgres_callback_key, postgres_hint
from tests.test_journal_postgres import _spec

NUMBERS = [f"9170000000{i:02d}" for i in range(40)]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[PostgresStore]:
    async with await PostgresStore.connect(database_url) as opened:
        await opened.ensure_schema()
        yield opened


@pytest.fixture
async def delivery(database_url: str) -> AsyncIterator[PostgresDelivery]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        yield PostgresDelivery(db)


async def _campaign(store: PostgresStore, app_id: str = "app-1") -> PostgresJournal:
    campaign, _ = await store.enqueue(_spec(app_id, recipients_sha256=f"r-{app_id}"), NUMBERS)
    return store.journal(campaign, app_id)


async def _finish(journal: PostgresJournal, to: str, status: str, message_id: str | None) -> None:
    """`to` marked and finished: sent with `message_id`, or ambiguous (its answer lost)."""
    await journal.mark_sending(to)
    if status == "sent":
        result: Any = {"recipient": to, "success": True,
                       "result": {"messages": [{"id": message_id}]}}  # fmt: skip
    else:
        result = {"recipient": to, "success": False, "error": "HTTP 504 (may have been delivered)"}
    journal.record(Outcome(0, to, to, status, result))  # type: ignore[arg-type]
    await journal.flush()


def _status(gs_id: str | None, word: str, ts: int = 1710941393, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"id": f"wamid.{gs_id}", "recipient_id": "9170****001",
                            "status": word, "timestamp": ts}  # fmt: skip
    if gs_id is not None:
        item["gs_id"] = gs_id
    item.update(extra)
    return {"gs_app_id": "app",
            "entry": [{"changes": [{"field": "messages", "value": {"statuses": [item]}}]}]}  # fmt: skip


def _failed(gs_id: str, code: int, title: str, **extra: Any) -> dict[str, Any]:
    return _status(gs_id, "failed", errors=[{"code": code, "title": title}], **extra)


async def _deliver(delivery: PostgresDelivery, *bodies: dict[str, Any]) -> list[bool]:
    events = [event for body in bodies for event in parse_events(body)]
    return await delivery.store_events(event_rows(events))


async def _row(store: PostgresStore, campaign: int, to: str) -> tuple[Any, ...]:
    cursor = await store.reader.execute(
        "SELECT r.state, COALESCE(r.message_id, d.message_id), d.delivery, d.delivery_at, "
        "d.failure_code, d.failure_title FROM gupshup_recipients AS r "
        "LEFT JOIN gupshup_deliveries AS d ON d.campaign = r.campaign AND d.idx = r.idx "
        "WHERE r.campaign = %s AND r.recipient = %s",
        (campaign, to),
    )
    found = await cursor.fetchone()
    assert found is not None
    return tuple(found)


async def _counts(delivery: PostgresDelivery, campaign: int) -> dict[tuple[Any, ...], int]:
    groups = (await delivery.delivery_counts(campaign))[campaign]
    return {(state, word, code): n for state, word, code, n in groups}


async def test_a_send_keeps_its_message_id_from_its_answer(store: PostgresStore) -> None:
    journal = await _campaign(store)
    await _finish(journal, NUMBERS[0], "sent", "gs-a")
    assert await _row(store, journal.campaign, NUMBERS[0]) == (
        "sent",
        "gs-a",
        None,
        None,
        None,
        None,
    )


async def test_exact_counts_of_a_funnel(store: PostgresStore, delivery: PostgresDelivery) -> None:
    journal = await _campaign(store)
    [to async for to in journal.pending()]
    for i, to in enumerate(NUMBERS[:10]):
        await _finish(journal, to, "sent", f"gs-{i}")
    bodies = [_status(f"gs-{i}", "sent") for i in range(10)]
    bodies += [_status(f"gs-{i}", "delivered") for i in range(7)]
    bodies += [_status(f"gs-{i}", "read") for i in range(4)]
    bodies += [_failed("gs-8", 131047, "Re-engagement message"),
               _failed("gs-9", 131026, "Message undeliverable")]  # fmt: skip
    assert await _deliver(delivery, *bodies) == [True] * len(bodies)
    assert await _counts(delivery, journal.campaign) == {
        ("sent", "read", None): 4,
        ("sent", "delivered", None): 3,
        ("sent", "sent", None): 1,
        ("sent", "failed", 131047): 1,
        ("sent", "failed", 131026): 1,
        ("pending", None, None): 30,
    }
    assert await delivery.event_count() == len(bodies)
    assert await delivery.unapplied_events() == 0


async def test_a_repeated_delivery_is_stored_and_applied_once(
    store: PostgresStore, delivery: PostgresDelivery
) -> None:
    journal = await _campaign(store)
    await _finish(journal, NUMBERS[0], "sent", "gs-a")
    first = await _deliver(delivery, _status("gs-a", "delivered", 1710941395))
    # The same event again, then twice in one batch: never new, the time of the first kept.
    again = await _deliver(delivery, _status("gs-a", "delivered", 1710941999))
    twice = await _deliver(delivery, _status("gs-a", "read", 1710941400),
                           _status("gs-a", "read", 1710941401))  # fmt: skip
    assert (first, again, twice) == ([True], [False], [True, False])
    assert await delivery.event_count() == 2
    row = await _row(store, journal.campaign, NUMBERS[0])
    assert row[2:4] == ("read", 1710941400.0)


async def test_statuses_move_forward_only_whatever_the_order(
    store: PostgresStore, delivery: PostgresDelivery
) -> None:
    journal = await _campaign(store)
    for i, to in enumerate(NUMBERS[:3]):
        await _finish(journal, to, "sent", f"gs-{i}")
    # read before the rest; failed after delivered (kept delivered); delivered after failed.
    await _deliver(delivery, _status("gs-0", "read", 5), _status("gs-0", "sent", 2))
    await _deliver(delivery, _status("gs-0", "delivered", 3), _status("gs-0", "enqueued", 1))
    await _deliver(delivery, _status("gs-1", "delivered", 3))
    await _deliver(delivery, _failed("gs-1", 131049, "Meta chose not to deliver."))
    await _deliver(delivery, _failed("gs-2", 131026, "Message undeliverable", timestamp=4))
    await _deliver(delivery, _status("gs-2", "delivered", 6))
    rows = [await _row(store, journal.campaign, to) for to in NUMBERS[:3]]
    assert [row[2:] for row in rows] == [
        ("read", 5.0, None, None),
        ("delivered", 3.0, None, None),
        ("delivered", 6.0, None, None),
    ]
    assert await delivery.event_count() == 8


async def test_a_status_before_its_send_answer_is_kept_then_applied(
    store: PostgresStore, delivery: PostgresDelivery
) -> None:
    journal = await _campaign(store)
    assert await _deliver(delivery, _status("gs-early", "delivered")) == [True]
    assert await delivery.unapplied_events() == 1
    assert await delivery.apply_unmatched() == 0  # nobody sent gs-early yet
    await _finish(journal, NUMBERS[5], "sent", "gs-early")
    assert await delivery.apply_unmatched() == 1
    assert await delivery.apply_unmatched() == 0
    assert await delivery.unapplied_events() == 0
    assert (await _row(store, journal.campaign, NUMBERS[5]))[2] == "delivered"


async def test_callback_data_settles_an_ambiguous_send_of_its_campaign_only(
    store: PostgresStore, delivery: PostgresDelivery
) -> None:
    journal = await _campaign(store)
    other = await _campaign(store, "app-2")
    [to async for to in journal.pending()]
    tag = await journal.callback_tag()
    row = journal.take_row(NUMBERS[3])
    assert (row, journal.take_row(NUMBERS[3])) == (3, None)  # handed out once
    await _finish(journal, NUMBERS[3], "ambiguous", None)
    key = postgres_callback_key(journal.campaign, tag, 3)
    assert key == f"gp:{journal.campaign}:{tag}:3"
    assert len(tag) == 12
    wrong_tag = postgres_callback_key(journal.campaign, "0" * 12, 4)
    wrong_campaign = postgres_callback_key(other.campaign, tag, 3)
    await _deliver(
        delivery,
        _status("gs-lost", "delivered", biz_opaque_callback_data=key),
        _status("gs-x", "delivered", biz_opaque_callback_data=wrong_tag),
        _status("gs-y", "read", biz_opaque_callback_data=wrong_campaign),
    )
    assert await _row(store, journal.campaign, NUMBERS[3]) == (
        "ambiguous", "gs-lost", "delivered", 1710941393.0, None, None,
    )  # fmt: skip
    assert (await _row(store, journal.campaign, NUMBERS[4]))[2] is None
    assert (await _row(store, other.campaign, NUMBERS[3]))[2] is None
    assert await delivery.unapplied_events() == 2
    # Its later statuses need no callback data: the message id is known now.
    await _deliver(delivery, _status("gs-lost", "read"))
    assert (await _row(store, journal.campaign, NUMBERS[3]))[2] == "read"


def test_a_postgres_callback_key_is_parsed_strictly() -> None:
    assert postgres_hint("gp:12:abc:7") == (12, "abc", 7)
    for bad in ("ga:abc:7", "gp:12:abc", "gp:x:abc:7", "gp:12::7", "gp:12:abc:-1",
                f"gp:{2**63}:abc:1", f"gp:1:abc:{2**31}", "", None):  # fmt: skip
        assert postgres_hint(bad) is None, bad


async def test_two_receivers_storing_the_same_events_at_once_apply_each_once(
    store: PostgresStore, database_url: str
) -> None:
    journal = await _campaign(store)
    for i, to in enumerate(NUMBERS):
        await _finish(journal, to, "sent", f"gs-{i}")
    words = ("enqueued", "sent", "delivered", "read")
    bodies = [_status(f"gs-{i}", word, 10 + k) for i in range(len(NUMBERS)) for k, word in enumerate(words[: 1 + i % 4])]  # fmt: skip
    async with (
        await psycopg.AsyncConnection.connect(database_url, autocommit=True) as one,
        await psycopg.AsyncConnection.connect(database_url, autocommit=True) as two,
    ):
        receivers = [PostgresDelivery(one), PostgresDelivery(two)]
        shuffled = [random.Random(seed).sample(bodies, len(bodies)) for seed in (1, 2)]
        batches = [
            [order[start : start + 7] for start in range(0, len(order), 7)] for order in shuffled
        ]

        async def receive(receiver: PostgresDelivery, batches: list[Any]) -> list[str]:
            new: list[str] = []
            for batch in batches:
                events = [event for body in batch for event in parse_events(body)]
                fresh = await receiver.store_events(event_rows(events))
                new += [
                    row.key for row, is_new in zip(event_rows(events), fresh, strict=True) if is_new
                ]
            return new

        first, second = await asyncio.gather(
            *(receive(receiver, b) for receiver, b in zip(receivers, batches, strict=True))
        )
    assert sorted(first + second) == sorted({row.key for body in bodies for row in event_rows(parse_events(body))})  # fmt: skip
    assert await PostgresDelivery(store.reader).event_count() == len(bodies)
    counts = await _counts(PostgresDelivery(store.reader), journal.campaign)
    assert counts == {("sent", "enqueued", None): 10, ("sent", "sent", None): 10,
                      ("sent", "delivered", None): 10, ("sent", "read", None): 10}  # fmt: skip


async def test_text_postgres_cannot_hold_does_not_refuse_a_batch(
    store: PostgresStore, delivery: PostgresDelivery
) -> None:
    journal = await _campaign(store)
    await _finish(journal, NUMBERS[0], "sent", "gs-a")
    fresh = await _deliver(delivery, _failed("gs-a", 2**70, "bad\x00title"))
    assert fresh == [True]
    row = await _row(store, journal.campaign, NUMBERS[0])
    assert row[2:] == ("failed", 1710941393.0, None, "bad\ufffdtitle")


async def test_a_version_1_database_is_upgraded_in_place(database_url: str) -> None:
    from gupshup_async.journal._pg_schema import SCHEMA

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        for statement in SCHEMA:  # what version 1 created, with a campaign already sent
            await db.execute(statement)
        await db.execute("INSERT INTO gupshup_schema (version) VALUES (1)")
        await db.execute(
            "INSERT INTO gupshup_campaigns (app_id, base_url, token_env, message, concurrency, "
            "timeout, max_retries, message_sha256, recipients_sha256) "
            "VALUES ('app-1', 'http://127.0.0.1:9', 'T', '{}', 1, 1, 0, 'm', 'r')"
        )
        await db.execute(
            "INSERT INTO gupshup_recipients (campaign, idx, recipient, digits, state, result) "
            "VALUES (1, 0, %s, %s, 'sent', %s)",
            (NUMBERS[0], NUMBERS[0], '{"messages": [{"id": "gs-old"}]}'),
        )
    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        await store.ensure_schema()  # once upgraded, nothing more to do
        cursor = await store.reader.execute("SELECT max(version) FROM gupshup_schema")
        assert await cursor.fetchone() == (2,)
        tag = await store.journal(1, "app-1").callback_tag()
        assert len(tag) == 12
        delivery = PostgresDelivery(store.reader)
        assert await _deliver(delivery, _status("gs-old", "read")) == [True]
        assert await _row(store, 1, NUMBERS[0]) == (
            "sent",
            "gs-old",
            "read",
            1710941393.0,
            None,
            None,
        )
