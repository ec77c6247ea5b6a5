"""The mock's webhooks: seeded fates, Gupshup's shapes, retries, duplicates, inbound on demand."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import gupshup_async as g
from gupshup_async.cli._webhooks import ReceiverThread
from gupshup_async.journal.delivery import DeliveryJournal
from gupshup_async.mock import DeliveryPlan, MockGupshupServer
from gupshup_async.webhooks import InboundMessage, StatusEvent, WebhookReceiver, parse_events

NUMBERS = [f"9172{i:08d}" for i in range(6)]


def test_fates_are_seeded_per_recipient_and_follow_the_shares() -> None:
    plan = DeliveryPlan(seed=1, failures={131047: 0.2, 131026: 0.1})
    numbers = [f"9173{i:08d}" for i in range(2000)]
    fates = Counter(plan.fate(n) for n in numbers)
    assert [plan.fate(n) for n in numbers] == [
        DeliveryPlan(seed=1, failures={131047: 0.2, 131026: 0.1}).fate(n) for n in numbers
    ]
    assert 340 <= fates[("failed", 131047)] <= 460
    assert 140 <= fates[("failed", 131026)] <= 260
    assert plan.fate(numbers[0]) != DeliveryPlan(seed=2).fate(numbers[0]) or plan.fate(
        numbers[1]
    ) != DeliveryPlan(seed=2).fate(numbers[1])
    assert {plan.statuses(n)[-1] for n in numbers} == {"read", "delivered", "failed"}
    assert {tuple(plan.statuses(n)) for n in numbers} == {
        ("enqueued", "failed"), ("enqueued", "sent", "delivered"), ("enqueued", "sent", "delivered", "read")
    }  # fmt: skip


def test_failure_shares_over_one_are_refused() -> None:
    with pytest.raises(ValueError, match="failures: shares must be >= 0 and add up to at most 1"):
        DeliveryPlan(failures={131047: 0.7, 131026: 0.4})


@pytest.fixture
def journal_receiver(tmp_path: Path) -> Iterator[ReceiverThread]:
    hooks = ReceiverThread(WebhookReceiver(journal=tmp_path / "j.sqlite3", secret="s3cret"))
    hooks.start()
    yield hooks
    hooks.stop()


def _stored(receiver: ReceiverThread) -> list[dict[str, object]]:
    assert isinstance(receiver.receiver.journal, DeliveryJournal)
    with sqlite3.connect(receiver.receiver.journal.path) as db:
        return [
            json.loads(raw)
            for (raw,) in db.execute("SELECT raw FROM webhook_events ORDER BY rowid")
        ]


async def _send(mock: MockGupshupServer, numbers: list[str]) -> list[str]:
    async with g.AsyncGupshupClient(mock.app_id, mock.token, base_url=mock.base_url) as client:
        return [
            (
                await client.send(n, g.Text(body="hi"), biz_opaque_callback_data=f"tag-{n}")
            ).message_id
            for n in numbers
        ]


async def test_statuses_arrive_in_gupshups_shape_with_masked_numbers_and_repeats(
    journal_receiver: ReceiverThread,
) -> None:
    plan = DeliveryPlan(
        seed=5, failures={131047: 0.5}, flat_failures=True, duplicate_share=1.0, delays=(0, 0, 0, 0)
    )
    async with MockGupshupServer(webhook_url=journal_receiver.url, delivery=plan,
                                 webhook_headers={"X-Webhook-Secret": "s3cret"}) as mock:  # fmt: skip
        ids = await _send(mock, NUMBERS)
        await asyncio.to_thread(mock.wait_for_webhooks, 30)
        assert mock.webhooks is not None
        posted = mock.webhooks.posted
    expected = sum(len(plan.statuses(n)) for n in NUMBERS)
    assert posted == 2 * expected  # every event twice
    assert journal_receiver.receiver.stats["duplicates"] == expected
    stored = _stored(journal_receiver)
    assert len(stored) == expected
    events = [
        e
        for raw in stored
        for e in parse_events({"entry": [{"changes": [{"value": {"statuses": [raw]}}]}]})
    ]
    assert all(isinstance(e, StatusEvent) for e in events)
    by_id = {i: n for i, n in zip(ids, NUMBERS, strict=True)}
    for event in events:
        assert isinstance(event, StatusEvent)
        to = by_id[event.gs_id or ""]
        assert event.recipient == to[:4] + "****" + to[-3:]
        assert event.biz_opaque_callback_data == f"tag-{to}"
        assert event.timestamp is not None
        if event.status == "failed":
            assert [(e.code, e.title) for e in event.errors] == [(131047, "Re-engagement message")]
            assert "errors" not in event.raw  # the older flat form: code + reason
    assert {type(raw["timestamp"]) for raw in stored} == {int, str}


async def test_the_mock_retries_while_the_receiver_is_down(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plan = DeliveryPlan(
        seed=3, delays=(0, 0, 0, 0), retry_initial=0.05, retry_max=0.2, max_attempts=200
    )
    hooks = ReceiverThread(WebhookReceiver(journal=tmp_path / "j.sqlite3"), port=port)
    async with MockGupshupServer(webhook_url=f"http://127.0.0.1:{port}/", delivery=plan) as mock:
        await _send(mock, NUMBERS[:2])
        await asyncio.sleep(0.5)  # nobody listening: every post fails and is retried
        assert mock.webhooks is not None
        assert mock.webhooks.posted == 0
        assert mock.webhooks.attempts >= 4
        hooks.start()
        try:
            await asyncio.to_thread(mock.wait_for_webhooks, 30)
        finally:
            hooks.stop()
        assert mock.webhooks.gave_up == 0
        assert mock.webhooks.posted == sum(len(plan.statuses(n)) for n in NUMBERS[:2])
    assert len(_stored(hooks)) == mock.webhooks.posted


async def test_refused_posts_are_retried_then_given_up(journal_receiver: ReceiverThread) -> None:
    plan = DeliveryPlan(
        seed=3, delays=(0, 0, 0, 0), retry_initial=0.01, retry_max=0.01, max_attempts=3
    )
    async with MockGupshupServer(webhook_url=journal_receiver.url, delivery=plan,
                                 webhook_headers={"X-Webhook-Secret": "wrong"}) as mock:  # fmt: skip
        await _send(mock, NUMBERS[:1])
        await asyncio.to_thread(mock.wait_for_webhooks, 30)
        assert mock.webhooks is not None
        events = len(plan.statuses(NUMBERS[0]))
        assert (mock.webhooks.posted, mock.webhooks.gave_up, mock.webhooks.attempts) == (
            0,
            events,
            3 * events,
        )
        assert mock.webhooks.answers == Counter({"401": 3 * events})
    assert _stored(journal_receiver) == []


async def test_inbound_messages_on_demand(journal_receiver: ReceiverThread) -> None:
    async with MockGupshupServer(webhook_url=journal_receiver.url,
                                 webhook_headers={"X-Webhook-Secret": "s3cret"}) as mock:  # fmt: skip
        wamid = await asyncio.to_thread(
            mock.send_inbound, "919876543210", "Is my order here?", name="Ravi"
        )
        await asyncio.to_thread(mock.wait_for_webhooks, 30)
    (raw,) = _stored(journal_receiver)
    (event,) = parse_events(
        {
            "entry": [
                {
                    "changes": [
                        {
                            "value": {
                                "messages": [raw],
                                "contacts": [
                                    {"wa_id": "919876543210", "profile": {"name": "Ravi"}}
                                ],
                            }
                        }
                    ]
                }
            ]
        }
    )
    assert isinstance(event, InboundMessage)
    assert (event.wamid, event.sender, event.text, event.profile_name) == (
        wamid,
        "919876543210",
        "Is my order here?",
        "Ravi",
    )
