"""WebhookReceiver in-process (httpx.ASGITransport): auth, allowlist, size limit, dedup, ack."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import gupshup_async as g
from gupshup_async.journal import Journal
from gupshup_async.webhooks import InboundMessage, StatusEvent, WebhookEvent, WebhookReceiver

SECRET = "whsec_5ecret-Value"


def body(*statuses: tuple[str, str]) -> dict[str, Any]:
    items = [{"gs_id": gs, "id": f"wamid.{gs}", "recipient_id": "9191****873", "status": st, "timestamp": 1710941393420}
             for gs, st in statuses]  # fmt: skip
    return {"gs_app_id": "app", "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"statuses": items}}]}]}  # fmt: skip


def client_for(app: WebhookReceiver, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://receiver")


def events_in(path: Path) -> int:
    journal = Journal(path)
    try:
        return journal.event_count()
    finally:
        journal.close()


async def test_a_missing_or_wrong_secret_is_401_and_nothing_is_stored(tmp_path: Path) -> None:
    receiver = WebhookReceiver(journal=tmp_path / "j.sqlite3", secret=SECRET)
    async with client_for(receiver) as http:
        missing = await http.post("/", json=body(("gs-1", "sent")))
        wrong = await http.post(
            "/", json=body(("gs-1", "sent")), headers={"X-Webhook-Secret": SECRET[:-1] + "X"}
        )
        longer = await http.post("/", json=body(("gs-1", "sent")), headers={"X-Webhook-Secret": SECRET + "X"})  # fmt: skip
    await receiver.aclose()
    assert [r.status_code for r in (missing, wrong, longer)] == [401, 401, 401]
    assert missing.json() == {"status": "error", "message": "Unauthorized"}
    assert events_in(tmp_path / "j.sqlite3") == 0


async def test_the_right_secret_in_a_custom_header_is_accepted_and_stored(tmp_path: Path) -> None:
    receiver = WebhookReceiver(
        journal=tmp_path / "j.sqlite3", secret=SECRET, secret_header="X-Gs-Token"
    )
    async with client_for(receiver) as http:
        answer = await http.post("/", json=body(("gs-1", "sent")), headers={"x-gs-token": SECRET})
    await receiver.aclose()
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert events_in(tmp_path / "j.sqlite3") == 1


def test_the_secret_never_reaches_a_repr() -> None:
    receiver = WebhookReceiver(secret=SECRET)
    assert SECRET not in repr(receiver)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("10.1.2.3", None, (), 200),
        ("192.168.1.9", None, (), 403),
        ("127.0.0.1", "10.1.2.3", (), 403),  # X-Forwarded-For from an untrusted peer is ignored
        ("127.0.0.1", "10.1.2.3", ("127.0.0.0/8",), 200),
        ("127.0.0.1", "10.1.2.3, 192.168.1.9", ("127.0.0.0/8",), 403),  # right-most untrusted hop
        ("127.0.0.1", "192.168.1.9, 10.1.2.3", ("127.0.0.0/8",), 200),  # left part is spoofable
        ("127.0.0.1", "10.1.2.3, 127.0.0.2", ("127.0.0.0/8",), 200),  # a chain of trusted proxies
        ("127.0.0.1", "garbage", ("127.0.0.0/8",), 403),
    ],
)
async def test_ip_allowlist_with_cidrs_and_trusted_proxies(
    peer: str, forwarded: str | None, trusted: tuple[str, ...], expected: int
) -> None:
    receiver = WebhookReceiver(allow_ips=["10.0.0.0/8", "2001:db8::/32"], trusted_proxies=trusted)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    async with client_for(receiver, peer) as http:
        answer = await http.post("/", json=body(("gs-1", "sent")), headers=headers)
    assert answer.status_code == expected


def test_a_bad_cidr_is_a_value_error_naming_the_setting() -> None:
    with pytest.raises(
        ValueError, match=re.escape("allow_ips: '10.0.0.0/33' is not an IP address or CIDR")
    ):
        WebhookReceiver(allow_ips=["10.0.0.0/33"])


async def test_a_body_over_the_limit_is_413_by_its_declared_length(tmp_path: Path) -> None:
    receiver = WebhookReceiver(journal=tmp_path / "j.sqlite3", max_body_bytes=100)
    async with client_for(receiver) as http:
        answer = await http.post("/", content=b"x" * 101)
    await receiver.aclose()
    assert answer.status_code == 413
    assert events_in(tmp_path / "j.sqlite3") == 0


async def test_a_chunked_body_over_the_limit_is_413_and_read_no_further() -> None:
    receiver = WebhookReceiver(max_body_bytes=1000)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(10_000):
            sent += 1
            yield b"y" * 100

    async with client_for(receiver) as http:
        answer = await http.post("/", content=endless())
    assert answer.status_code == 413
    assert sent <= 12  # 11 chunks cross 1000 bytes; ASGITransport may pull one ahead


async def test_a_body_that_is_not_a_v3_callback_is_400() -> None:
    receiver = WebhookReceiver()
    async with client_for(receiver) as http:
        answer = await http.post("/", content=b'{"type": "message-event"}')
    assert answer.status_code == 400
    assert answer.json()["message"] == "not a Gupshup v3 callback: no 'entry' list"


async def test_only_post_on_the_configured_path() -> None:
    receiver = WebhookReceiver(path="/hooks/gupshup")
    async with client_for(receiver) as http:
        elsewhere = await http.post("/", json=body(("gs-1", "sent")))
        put = await http.put("/hooks/gupshup", json=body(("gs-1", "sent")))
        probe = await http.get("/hooks/gupshup")
        right = await http.post("/hooks/gupshup", json=body(("gs-1", "sent")))
    assert [r.status_code for r in (elsewhere, put, probe, right)] == [404, 405, 200, 200]


async def test_a_repeated_delivery_is_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    receiver = WebhookReceiver(journal=path, queue_size=10)
    async with client_for(receiver) as http:
        first = await http.post("/", json=body(("gs-1", "sent"), ("gs-1", "delivered")))
        again = await http.post("/", json=body(("gs-1", "delivered")))
    await receiver.aclose()
    assert (first.status_code, again.status_code) == (200, 200)
    assert receiver.stats == {"accepted": 2, "events": 2, "duplicates": 1, "refused": 0}
    assert receiver.queue is not None
    assert receiver.queue.qsize() == 2
    assert events_in(path) == 2


async def test_without_a_journal_repeats_are_dropped_from_memory() -> None:
    receiver = WebhookReceiver(queue_size=10)
    async with client_for(receiver) as http:
        await http.post("/", json=body(("gs-1", "read")))
        await http.post("/", json=body(("gs-1", "read")))
    assert receiver.queue is not None
    assert receiver.queue.qsize() == 1


async def test_a_crash_between_receipt_and_acknowledgement_applies_the_event_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    journal.bind({"message_sha256": "m", "recipients_sha256": "r"})
    journal.load(["917000000001"])
    list(journal.pending())
    await journal.mark_sending("917000000001")
    answer = {"messages": [{"id": "gs-1"}]}
    journal.record(g.Outcome(0, "917000000001", "917000000001", "sent",
                             {"recipient": "917000000001", "success": True, "result": answer}))  # fmt: skip
    journal.close()

    receiver = WebhookReceiver(journal=path)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [],
        "client": ("127.0.0.1", 1),
    }
    payload = json.dumps(body(("gs-1", "delivered"))).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": payload, "more_body": False}

    async def crash(message: Any) -> None:
        raise ConnectionResetError("process died before the answer left")  # no 2xx reached Gupshup

    with pytest.raises(ConnectionResetError):
        await receiver(scope, receive, crash)
    await receiver.aclose()

    restarted = WebhookReceiver(journal=path)  # Gupshup retries the same body
    async with client_for(restarted) as http:
        retried = await http.post("/", content=payload)
    await restarted.aclose()
    assert retried.status_code == 200
    assert restarted.stats["duplicates"] == 1
    check = Journal(path)
    rows = check._db.execute("SELECT delivery, message_id FROM recipients").fetchall()
    assert rows == [("delivered", "gs-1")]
    assert check.event_count() == 1
    check.close()


async def test_a_handler_gets_new_events_after_the_answer(tmp_path: Path) -> None:
    seen: list[WebhookEvent] = []
    release = asyncio.Event()

    async def handler(event: WebhookEvent) -> None:
        await release.wait()  # a slow handler must not delay the answer
        seen.append(event)

    inbound = {"gs_app_id": "app", "entry": [{"changes": [{"field": "messages", "value": {
        "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919876543210"}],
        "messages": [{"from": "919876543210", "id": "wamid.IN", "timestamp": "1710941393", "type": "text", "text": {"body": "hi"}}]}}]}]}  # fmt: skip
    receiver = WebhookReceiver(journal=tmp_path / "j.sqlite3", handler=handler)
    async with client_for(receiver) as http:
        answers = [await http.post("/", json=inbound), await http.post("/", json=inbound)]
    assert [a.status_code for a in answers] == [200, 200]
    assert seen == []
    release.set()
    await receiver.aclose()
    assert len(seen) == 1
    assert isinstance(seen[0], InboundMessage)
    assert (seen[0].text, seen[0].profile_name) == ("hi", "Asha")


async def test_a_full_queue_answers_503_so_gupshup_retries_and_nothing_is_lost() -> None:
    receiver = WebhookReceiver(queue_size=1)
    async with client_for(receiver) as http:
        first = await http.post("/", json=body(("gs-1", "sent")))
        full = await http.post("/", json=body(("gs-2", "sent")))
        assert receiver.queue is not None
        taken = receiver.queue.get_nowait()
        retried = await http.post("/", json=body(("gs-2", "sent")))
    assert [first.status_code, full.status_code, retried.status_code] == [200, 503, 200]
    assert isinstance(taken, StatusEvent)
    assert taken.gs_id == "gs-1"
    assert receiver.queue.get_nowait().gs_id == "gs-2"  # type: ignore[union-attr]


async def test_concurrent_deliveries_are_all_stored(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    receiver = WebhookReceiver(journal=path)
    async with client_for(receiver) as http:
        answers = await asyncio.gather(
            *(http.post("/", json=body((f"gs-{n}", "sent"))) for n in range(300))
        )
    await receiver.aclose()
    assert {a.status_code for a in answers} == {200}
    assert events_in(path) == 300
