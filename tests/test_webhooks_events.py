"""parse_events: Gupshup's documented v3 examples and Meta-format examples, every kind."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

import gupshup_async as g
from gupshup_async.webhooks import (
    InboundMessage,
    StatusEvent,
    UnknownEvent,
    WebhookError,
    WebhookParseError,
    parse_events,
    parse_timestamp,
)

APP = "82ed52f4-30c0-4f12-81b4-e7ad07bd41de"

# Gupshup's own example (partner docs, "enqueued"), verbatim.
GUPSHUP_ENQUEUED = """{"entry":[{"changes":[{"field":"messages","value":{"messaging_product":"whatsapp",
  "statuses":[{"gs_id":"2baff204-c39a-4121-90b5-f53f26d522b3",
               "id":"wamid.HBgMOTE5MTYzODA1ODczFQIAERgSNkZCMThGMEEwQzJDOUFGQjFBAA==",
               "recipient_id":"9191****873","status":"enqueued","timestamp":1710941393420}]}}],
  "id":"112535025189792"}],
 "gs_app_id":"82ed52f4-30c0-4f12-81b4-e7ad07bd41de","object":"whatsapp_business_account"}"""


def envelope(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "gs_app_id": APP,
        "object": "whatsapp_business_account",
        "entry": [{"id": "112535025189792", "changes": [{"field": "messages", "value": value}]}],
    }


def inbound(message: dict[str, Any]) -> InboundMessage:
    base = {"from": "919876543210", "id": "wamid.IN1", "timestamp": "1710941393"}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106"},
        "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919876543210"}],
        "messages": [{**base, **message}],
    }
    (event,) = parse_events(envelope(value))
    assert isinstance(event, InboundMessage)
    return event


def test_gupshup_documented_enqueued_example() -> None:
    (event,) = parse_events(GUPSHUP_ENQUEUED.encode())
    assert event == StatusEvent(
        app_id=APP,
        gs_id="2baff204-c39a-4121-90b5-f53f26d522b3",
        wamid="wamid.HBgMOTE5MTYzODA1ODczFQIAERgSNkZCMThGMEEwQzJDOUFGQjFBAA==",
        recipient="9191****873",
        status="enqueued",
        timestamp=datetime(2024, 3, 20, 13, 29, 53, 420000, tzinfo=timezone.utc),
        raw=json.loads(GUPSHUP_ENQUEUED)["entry"][0]["changes"][0]["value"]["statuses"][0],
    )
    assert event.message_id == "2baff204-c39a-4121-90b5-f53f26d522b3"


def test_sent_status_keeps_conversation_pricing_and_callback_data() -> None:
    status = {
        "gs_id": "gs-9", "id": "wamid.S", "recipient_id": "919876543210", "status": "sent",
        "timestamp": "1710941393", "biz_opaque_callback_data": "ga1:c0ffee:42",
        "conversation": {"id": "conv-1", "expiration_timestamp": "1711027800", "origin": {"type": "service"}},
        "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
    }  # fmt: skip
    value = {"messaging_product": "whatsapp", "metadata": {}, "statuses": [status]}
    (event,) = parse_events(json.dumps(envelope(value)))
    assert isinstance(event, StatusEvent)
    assert (event.status, event.gs_id, event.wamid) == ("sent", "gs-9", "wamid.S")
    assert event.biz_opaque_callback_data == "ga1:c0ffee:42"
    assert event.conversation == status["conversation"]
    assert event.pricing == status["pricing"]
    assert event.timestamp == datetime(2024, 3, 20, 13, 29, 53, tzinfo=timezone.utc)
    assert event.errors == ()


def test_failed_status_in_meta_form_carries_errors() -> None:
    status = {
        "gs_id": "gs-1", "id": "wamid.F", "recipient_id": "9191****873", "status": "failed",
        "timestamp": 1710941393,
        "errors": [{"code": 131047, "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}],
    }  # fmt: skip
    (event,) = parse_events(envelope({"statuses": [status]}))
    assert isinstance(event, StatusEvent)
    assert event.errors == (
        WebhookError(
            code=131047,
            title="Re-engagement message",
            message="Re-engagement message",
            details="Message failed to send because more than 24 hours have passed since the "
            "customer last replied to this number.",
        ),
    )


def test_failed_status_in_the_older_flat_form_gives_the_same_first_error() -> None:
    status = {"gs_id": "gs-2", "id": "wamid.G", "status": "failed", "timestamp": "1710941393420",
              "code": 1002, "reason": "Number does not exist on WhatsApp"}  # fmt: skip
    (event,) = parse_events(envelope({"statuses": [status]}))
    assert isinstance(event, StatusEvent)
    assert event.errors == (WebhookError(code=1002, title="Number does not exist on WhatsApp"),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1710941393, datetime(2024, 3, 20, 13, 29, 53, tzinfo=timezone.utc)),
        ("1710941393", datetime(2024, 3, 20, 13, 29, 53, tzinfo=timezone.utc)),
        (1710941393420, datetime(2024, 3, 20, 13, 29, 53, 420000, tzinfo=timezone.utc)),
        ("1710941393420", datetime(2024, 3, 20, 13, 29, 53, 420000, tzinfo=timezone.utc)),
        (1710941393.5, datetime(2024, 3, 20, 13, 29, 53, 500000, tzinfo=timezone.utc)),
        ("yesterday", None),
        (None, None),
        (True, None),
        (-5, None),
    ],
)
def test_timestamps_in_seconds_or_milliseconds_number_or_string(
    value: object, expected: datetime | None
) -> None:
    assert parse_timestamp(value) == expected


def test_every_status_of_a_body_in_order_with_statuses_and_messages_together() -> None:
    statuses = [
        {"gs_id": f"gs-{n}", "id": f"wamid.{n}", "status": s, "timestamp": 1710941393}
        for n, s in enumerate(["enqueued", "sent", "delivered", "read", "deleted"])
    ]
    value = {"statuses": statuses, "messages": [{"from": "1", "id": "w", "type": "text", "text": {"body": "x"}}]}  # fmt: skip
    events = parse_events(envelope(value))
    assert [type(e).__name__ for e in events] == ["StatusEvent"] * 5 + ["InboundMessage"]
    assert [e.status for e in events if isinstance(e, StatusEvent)] == [
        "enqueued", "sent", "delivered", "read", "deleted"
    ]  # fmt: skip


def test_inbound_text_with_profile_name_and_context() -> None:
    event = inbound(
        {"type": "text", "text": {"body": "Where is my order?"},
         "context": {"from": "15550001111", "id": "wamid.OUT1"}}
    )  # fmt: skip
    assert (event.app_id, event.wamid, event.sender, event.profile_name) == (
        APP, "wamid.IN1", "919876543210", "Asha"
    )  # fmt: skip
    assert (event.type, event.text, event.context) == ("text", "Where is my order?", "wamid.OUT1")
    assert event.timestamp == datetime(2024, 3, 20, 13, 29, 53, tzinfo=timezone.utc)


def test_inbound_button_and_list_replies() -> None:
    button = inbound({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}})  # fmt: skip
    assert button.reply == g.webhooks.InteractiveReply("button_reply", "yes", "Yes")
    row = inbound({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "r1", "title": "Row", "description": "d"}}})  # fmt: skip
    assert row.reply == g.webhooks.InteractiveReply("list_reply", "r1", "Row", "d")


def test_inbound_quick_reply_button_payload() -> None:
    event = inbound({"type": "button", "button": {"payload": "STOP", "text": "Stop promotions"}, "context": {"from": "1555", "id": "wamid.T"}})  # fmt: skip
    assert event.button == g.webhooks.ButtonPayload("STOP", "Stop promotions")
    assert event.context == "wamid.T"


@pytest.mark.parametrize("kind", ["image", "video", "audio", "document", "sticker"])
def test_inbound_media_of_every_kind(kind: str) -> None:
    media = {"id": "1234", "mime_type": "image/jpeg", "sha256": "abc=", "caption": "look"}
    if kind == "document":
        media["filename"] = "bill.pdf"
    event = inbound({"type": kind, kind: media})
    assert event.type == kind
    assert event.media == g.webhooks.InboundMedia(
        id="1234", mime_type="image/jpeg", sha256="abc=", caption="look",
        filename="bill.pdf" if kind == "document" else None,
    )  # fmt: skip


def test_inbound_voice_note_says_voice() -> None:
    event = inbound({"type": "audio", "audio": {"id": "9", "mime_type": "audio/ogg; codecs=opus", "voice": True}})  # fmt: skip
    assert event.media is not None
    assert event.media.voice is True


def test_inbound_location_contacts_reaction_order() -> None:
    location = inbound({"type": "location", "location": {"latitude": 12.97, "longitude": 77.59, "name": "Office", "address": "MG Road"}})  # fmt: skip
    assert location.location == g.webhooks.InboundLocation(12.97, 77.59, "Office", "MG Road")
    cards = [{"name": {"formatted_name": "Ravi K", "first_name": "Ravi"}, "phones": [{"phone": "+91 98", "wa_id": "9198", "type": "CELL"}]}]  # fmt: skip
    assert inbound({"type": "contacts", "contacts": cards}).contacts == tuple(cards)
    reaction = inbound({"type": "reaction", "reaction": {"message_id": "wamid.OUT", "emoji": "👍"}})
    assert reaction.reaction == g.webhooks.InboundReaction("wamid.OUT", "👍")
    order = {"catalog_id": "c1", "text": "", "product_items": [{"product_retailer_id": "sku", "quantity": 2, "item_price": 10.5, "currency": "INR"}]}  # fmt: skip
    assert inbound({"type": "order", "order": order}).order == order


def test_inbound_flow_response_decodes_response_json() -> None:
    reply = {"name": "flow", "body": "Sent", "response_json": '{"flow_token": "t", "rating": "5"}'}
    event = inbound({"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": reply}})  # fmt: skip
    assert event.flow_response == g.webhooks.FlowResponse(
        "flow", "Sent", reply["response_json"], {"flow_token": "t", "rating": "5"}
    )


def test_a_flow_response_handed_over_decoded_is_read_too() -> None:
    reply = {"name": "flow", "body": "Sent", "response_json": {"flow_token": "t"}}
    event = inbound({"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": reply}})  # fmt: skip
    assert event.flow_response == g.webhooks.FlowResponse(
        "flow", "Sent", '{"flow_token": "t"}', {"flow_token": "t"}
    )


def test_an_unsupported_inbound_type_is_still_a_message_with_raw() -> None:
    raw = {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]}
    event = inbound(raw)
    assert event.type == "unsupported"
    assert event.raw["errors"] == raw["errors"]


@pytest.mark.parametrize(
    "value",
    [
        {"errors": [{"code": 131000, "title": "Something went wrong"}]},  # Meta's value-level error
        {"event": "account_update"},
        "not a dict",
    ],
)
def test_anything_else_in_the_envelope_is_an_unknown_event(value: object) -> None:
    body = {"gs_app_id": APP, "entry": [{"changes": [{"field": "x", "value": value}]}]}
    (event,) = parse_events(body)
    assert event == UnknownEvent(body["entry"][0]["changes"][0], APP)  # type: ignore[index]


def test_a_status_with_an_unknown_status_word_is_an_unknown_event() -> None:
    item = {"gs_id": "gs", "status": "played", "timestamp": 1}
    (event,) = parse_events(envelope({"statuses": [item]}))
    assert event == UnknownEvent(item, APP)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", b'{"type": "message-event", "payload": {}}', b'{"entry": 3}',
     b"[" * 100_000 + b"]" * 100_000],
)  # fmt: skip
def test_a_body_that_is_not_a_v3_callback_raises_webhook_parse_error(body: bytes) -> None:
    with pytest.raises(WebhookParseError, match="not a Gupshup v3 callback"):
        parse_events(body)
    assert issubclass(WebhookParseError, ValueError)


def test_parse_events_is_also_public_at_the_top() -> None:
    assert g.parse_events is parse_events
