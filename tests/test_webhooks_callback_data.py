"""biz_opaque_callback_data: on the wire for send() and bulk runs; a campaign tags every send."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import respx

import gupshup_async as g
from gupshup_async.cli._campaign import CampaignOptions, run_campaign
from gupshup_async.cli._progress import ProgressDisplay
from gupshup_async.journal import Journal
from gupshup_async.mock import check_payload
from gupshup_async.webhooks.reconcile import callback_key

from .conftest import SEND_URL, SUCCESS


async def test_send_puts_it_at_the_top_of_the_body(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    await client.send("919876543210", g.Text(body="hi"), reply_to="wamid.Q",
                      biz_opaque_callback_data="order-42 ✓")  # fmt: skip
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "919876543210",
        "type": "text", "text": {"body": "hi"}, "context": {"message_id": "wamid.Q"},
        "biz_opaque_callback_data": "order-42 ✓",
    }  # fmt: skip
    assert check_payload(body) is None  # the mock accepts it too


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 513, "biz_opaque_callback_data must be 1-512 characters, got 513"),
        ("", "biz_opaque_callback_data must be 1-512 characters, got 0"),
        (42, "biz_opaque_callback_data must be a string, not int"),
    ],
)
async def test_a_bad_value_is_refused_before_any_request(
    router: respx.Router, client: g.AsyncGupshupClient, value: object, message: str
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    with pytest.raises(ValueError, match=re.escape(message)):
        await client.send("919876543210", g.Text(body="hi"), biz_opaque_callback_data=value)  # type: ignore[arg-type]
    assert route.call_count == 0


async def test_512_characters_pass(router: respx.Router, client: g.AsyncGupshupClient) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    await client.send("919876543210", g.Text(body="hi"), biz_opaque_callback_data="y" * 512)
    assert json.loads(route.calls.last.request.content)["biz_opaque_callback_data"] == "y" * 512


async def test_bulk_takes_one_value_per_recipient_from_a_callable(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    numbers = ["919800000001", "919800000002", "919800000003"]
    tags = {"919800000001": "row-1", "919800000002": None, "919800000003": "row-3"}
    results = await g.BulkSender(client, rate=None).send(
        numbers, g.Text(body="hi"), biz_opaque_callback_data=tags.__getitem__
    )
    assert [r["success"] for r in results] == [True, True, True]
    sent = {(b := json.loads(c.request.content))["to"]: b.get("biz_opaque_callback_data") for c in route.calls}  # fmt: skip
    assert sent == tags


async def test_bulk_with_one_string_puts_it_on_every_send(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    await g.BulkSender(client, rate=None).send(
        ["919800000001", "919800000002"], g.Text(body="hi"), biz_opaque_callback_data="promo-7"
    )
    assert [json.loads(c.request.content)["biz_opaque_callback_data"] for c in route.calls] == ["promo-7"] * 2  # fmt: skip


async def test_bulk_refuses_a_string_over_the_limit_before_any_request(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    with pytest.raises(ValueError, match="biz_opaque_callback_data must be 1-512 characters"):
        await g.BulkSender(client, rate=None).send(["919800000001"], g.Text(body="hi"),
                                                   biz_opaque_callback_data="z" * 600)  # fmt: skip
    assert route.call_count == 0


async def test_a_callable_value_over_the_limit_fails_that_recipient_only(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    results = await g.BulkSender(client, rate=None).send(
        ["919800000001", "919800000002"], g.Text(body="hi"),
        biz_opaque_callback_data=lambda to: "z" * 600 if to.endswith("1") else "ok",
    )  # fmt: skip
    assert [r["success"] for r in results] == [False, True]
    assert "biz_opaque_callback_data must be 1-512 characters, got 600" in results[0]["error"]  # type: ignore[typeddict-item]
    assert route.call_count == 1


async def test_a_campaign_tags_each_send_with_its_tag_and_row(
    router: respx.Router, client: g.AsyncGupshupClient, tmp_path: Path
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    recipients = tmp_path / "to.csv"
    recipients.write_text("phone\n919800000001\nbad\n919800000003\n")
    options = CampaignOptions(recipients=recipients, message=g.Text(body="hi"), rate=None,
                              journal=tmp_path / "j.sqlite3")  # fmt: skip
    await run_campaign(options, ProgressDisplay(enabled=False, stream=io.StringIO()), client=client)
    journal = Journal(tmp_path / "j.sqlite3")
    tag = journal.callback_tag
    journal.close()
    assert re.fullmatch("[0-9a-f]{12}", tag)
    sent = {(b := json.loads(c.request.content))["to"]: b["biz_opaque_callback_data"] for c in route.calls}  # fmt: skip
    assert sent == {"919800000001": callback_key(tag, 0), "919800000003": callback_key(tag, 2)}
