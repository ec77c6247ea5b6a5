"""`request_from_wire` and `WireRequest`: a whole body read back, nothing dropped."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import httpx
import pytest

import gupshup_async as g

TO = "919876543210"
BODY = {"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {"body": "hi"}}


def _with_callback(value: Any) -> dict[str, Any]:
    return {**BODY, "biz_opaque_callback_data": value}


def test_a_body_without_callback_data_reads_as_the_old_three_tuple() -> None:
    request = g.request_from_wire(BODY)
    assert request == (TO, g.Text(body="hi"), None)
    assert request.biz_opaque_callback_data is None
    assert len(request) == 3
    assert hash(request) == hash((TO, g.Text(body="hi"), None))


def test_the_callback_data_comes_back_beside_the_three_fields() -> None:
    body = {**_with_callback("ga:7:12"), "context": {"message_id": "wamid.1"}}
    request = g.request_from_wire(body)
    to, message, reply_to = request
    assert (to, message, reply_to) == (TO, g.Text(body="hi"), "wamid.1")
    assert request[1] == g.Text(body="hi")
    assert request.biz_opaque_callback_data == "ga:7:12"
    assert request._asdict()["biz_opaque_callback_data"] == "ga:7:12"


def test_a_request_with_callback_data_equals_no_request_without_it() -> None:
    carrying = g.request_from_wire(_with_callback("a"))
    assert carrying != (TO, g.Text(body="hi"), None)
    assert carrying != g.request_from_wire(BODY)
    assert carrying != g.request_from_wire(_with_callback("b"))
    assert carrying == g.request_from_wire(_with_callback("a"))
    assert "biz_opaque_callback_data='a'" in repr(carrying)


def test_copies_and_replacements_keep_the_callback_data() -> None:
    request = g.request_from_wire(_with_callback("keep-me"))
    for twin in (copy.copy(request), copy.deepcopy(request), pickle.loads(pickle.dumps(request))):
        assert twin == request
        assert twin.biz_opaque_callback_data == "keep-me"
    replaced = request._replace(reply_to="wamid.2")
    assert (replaced.reply_to, replaced.biz_opaque_callback_data) == ("wamid.2", "keep-me")
    assert request._replace(biz_opaque_callback_data=None) == (TO, g.Text(body="hi"), None)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "biz_opaque_callback_data must be 1-512 characters, got 0"),
        ("x" * 513, "biz_opaque_callback_data must be 1-512 characters, got 513"),
        (7, "biz_opaque_callback_data must be a string, not int"),
        (None, "biz_opaque_callback_data must be a string, not NoneType"),
    ],
)
def test_the_callback_data_is_checked_as_send_checks_it(value: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        g.request_from_wire(_with_callback(value))


def test_the_longest_callback_data_is_read() -> None:
    assert g.request_from_wire(_with_callback("é" * 512)).biz_opaque_callback_data == "é" * 512


def test_message_from_wire_points_a_callback_data_to_request_from_wire() -> None:
    with pytest.raises(ValueError, match=r"biz_opaque_callback_data: .* request_from_wire\(\)"):
        g.message_from_wire(
            {"type": "text", "text": {"body": "hi"}, "biz_opaque_callback_data": "x"}
        )


async def test_a_body_read_back_is_sent_again_byte_for_byte_the_same() -> None:
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "text",
        "text": {"body": "hi"},
        "context": {"message_id": "wamid.1"},
        "biz_opaque_callback_data": "ga:7:12",
    }
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"messages": [{"id": "wamid.9"}]})

    request = g.request_from_wire(body)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        g.AsyncGupshupClient("app", "sk_token", http_client=http) as client,
    ):
        await client.send(
            request.to,
            request.message,
            reply_to=request.reply_to,
            biz_opaque_callback_data=request.biz_opaque_callback_data,
        )
    assert sent == [body]
