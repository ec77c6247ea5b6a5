from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

import gupshup_async as g
from gupshup_async._client import _parse_success, json_string
from gupshup_async.mock import MockGupshupServer

from .conftest import APP_ID, BASE_URL, SEND_URL, SUCCESS, TOKEN
from .reference_examples import EXAMPLES, TO


@pytest.mark.parametrize(("name", "message", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
async def test_each_type_posts_exact_url_headers_and_body(
    router: respx.Router,
    client: g.AsyncGupshupClient,
    name: str,
    message: g.Message,
    expected: dict[str, Any],
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)

    result = await client.send(TO, message)

    request = route.calls.last.request
    assert str(request.url) == SEND_URL
    assert request.headers["authorization"] == TOKEN
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == expected
    assert result == g.SendResult(
        message_id="gs-1", wa_id="919876543210", input="919876543210", raw=SUCCESS
    )


async def test_emoji_travels_as_utf8_not_escaped(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    await client.send(TO, g.Reaction(message_id="wamid.1", emoji="\N{THUMBS UP SIGN}"))
    assert "\N{THUMBS UP SIGN}".encode() in route.calls.last.request.content


async def test_reply_to_adds_context(router: respx.Router, client: g.AsyncGupshupClient) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    await client.send(TO, g.Text(body="hi"), reply_to="wamid.HBgM")
    body = json.loads(route.calls.last.request.content)
    assert body["context"] == {"message_id": "wamid.HBgM"}
    assert list(body) == [
        "messaging_product",
        "recipient_type",
        "to",
        "type",
        "text",
        "context",
    ]


@given(st.text(max_size=40))
def test_json_string_writes_what_the_json_encoder_writes(value: str) -> None:
    assert json_string(value) == json.dumps(value, ensure_ascii=False)


@pytest.mark.parametrize(
    "value",
    ['quote " here', "back\\slash", "tab\there", "x\u2028y", "emoji \N{THUMBS UP SIGN}", "\x7f"],
)
async def test_reply_to_and_callback_data_are_exact_json_on_the_wire(
    router: respx.Router, client: g.AsyncGupshupClient, value: str
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    await client.send(TO, g.Text(body="hi"), reply_to=value, biz_opaque_callback_data=value)
    body = json.loads(route.calls.last.request.content)
    assert body["context"] == {"message_id": value}
    assert body["biz_opaque_callback_data"] == value


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("+91 98765-43210", "919876543210"),
        ("(91) 9876 543210", "919876543210"),
        ("1234567", "1234567"),
        ("123456789012345", "123456789012345"),
    ],
)
async def test_recipient_is_normalised_on_the_wire(
    router: respx.Router, client: g.AsyncGupshupClient, given: str, sent: str
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    await client.send(given, g.Text(body="hi"))
    assert json.loads(route.calls.last.request.content)["to"] == sent


@pytest.mark.parametrize("bad", ["123456", "1234567890123456", "91abc98765", "٩١٩٨٧٦٥٤٣٢١", ""])
async def test_bad_recipient_is_refused_before_any_request(
    router: respx.Router, client: g.AsyncGupshupClient, bad: str
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    with pytest.raises(g.InvalidRecipientError):
        await client.send(bad, g.Text(body="hi"))
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("app_id", "token", "fragment"),
    [
        ("", TOKEN, "app_id must be a non-empty"),
        ("app/1", TOKEN, "URL characters"),
        ("app?x", TOKEN, "URL characters"),
        ("app#x", TOKEN, "URL characters"),
        ("app%2F", TOKEN, "URL characters"),
        ("app 1", TOKEN, "whitespace"),
        (APP_ID, "", "token must be a non-empty"),
        (APP_ID, f"Bearer {TOKEN}", "Bearer"),
        (APP_ID, f"bearer {TOKEN}", "Bearer"),
        (APP_ID, f"{TOKEN}\n", "whitespace"),
        (APP_ID, f"{TOKEN} x", "whitespace"),
        (APP_ID, f"{TOKEN}\x00", "control"),
    ],
)
def test_bad_credentials_are_refused_without_echoing_the_token(
    app_id: str, token: str, fragment: str
) -> None:
    with pytest.raises(g.InvalidCredentialsError) as info:
        g.AsyncGupshupClient(app_id, token)
    assert fragment in str(info.value)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)


async def test_token_is_in_no_repr() -> None:
    async with g.AsyncGupshupClient(APP_ID, TOKEN) as client:
        assert TOKEN not in repr(client)
        assert TOKEN not in str(client)
        assert TOKEN not in repr(vars(client))


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500, 503])
async def test_token_is_in_no_error_and_no_log_record(
    router: respx.Router,
    client: g.AsyncGupshupClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    router.post(SEND_URL).respond(status, json={"status": "error", "message": "nope"})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(g.APIError) as info:
        await client.send(TO, g.Text(body="hi"), max_retries=1)
    rendered = [str(info.value), repr(info.value), info.value.body, str(vars(info.value))]
    assert all(TOKEN not in text for text in rendered)
    assert caplog.records, "the attempts should have been logged"
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert all(TO not in record.getMessage() for record in caplog.records)


async def test_token_is_in_no_log_record_on_the_default_transport(
    mock_server: MockGupshupServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with g.AsyncGupshupClient(
        mock_server.app_id, mock_server.token, base_url=mock_server.base_url
    ) as client:
        await client.send(TO, g.Text(body="hi"))
    assert caplog.records
    assert all(mock_server.token not in r.getMessage() for r in caplog.records)


async def test_caller_supplied_http_client_is_not_closed(router: respx.Router) -> None:
    router.post(SEND_URL).respond(200, json=SUCCESS)
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    async with g.AsyncGupshupClient(APP_ID, TOKEN, base_url=BASE_URL, http_client=http):
        pass
    assert not http.is_closed
    await http.aclose()


async def test_own_http_client_is_closed() -> None:
    client = g.AsyncGupshupClient(APP_ID, TOKEN)
    await client.aclose()
    assert client._http.is_closed


def test_default_client_uses_the_aiohttp_transport() -> None:
    from httpx_aiohttp import AiohttpTransport

    client = g.AsyncGupshupClient(APP_ID, TOKEN)
    assert isinstance(client._http._transport, AiohttpTransport)
    assert client._http.timeout == httpx.Timeout(10.0)


@pytest.mark.parametrize(("name", "message", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
async def test_each_type_is_accepted_by_the_loopback_mock_on_the_default_transport(
    mock_server: MockGupshupServer,
    loopback_client: g.AsyncGupshupClient,
    name: str,
    message: g.Message,
    expected: dict[str, Any],
) -> None:
    result = await loopback_client.send(TO, message)

    assert mock_server.recorder.total_accepted == 1
    [accepted] = mock_server.recorder.messages
    assert (accepted.id, accepted.to, accepted.type) == (result.message_id, TO, expected["type"])


async def test_success_without_message_id_is_ambiguous(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    route = router.post(SEND_URL).respond(200, json={"messages": []})
    with pytest.raises(g.UnexpectedResponseError) as info:
        await client.send(TO, g.Text(body="hi"))
    assert info.value.ambiguous is True
    assert info.value.status_code == 200
    assert route.call_count == 1


async def test_a_dict_or_an_empty_reply_to_is_refused_before_any_request(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    with pytest.raises(TypeError, match="message_from_wire"):
        await client.send(TO, {"type": "text", "text": {"body": "hi"}})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reply_to"):
        await client.send(TO, g.Text(body="hi"), reply_to="")
    assert route.call_count == 0


async def test_token_is_in_no_debug_log_of_a_caller_supplied_httpx_client(
    mock_server: MockGupshupServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        httpx.AsyncClient() as http,
        g.AsyncGupshupClient(
            mock_server.app_id, mock_server.token, base_url=mock_server.base_url, http_client=http
        ) as client,
    ):
        await client.send(TO, g.Text(body="hi"))
    names = {record.name.split(".")[0] for record in caplog.records}
    assert {"httpx", "httpcore"} <= names  # their DEBUG logs were on and captured
    assert all(mock_server.token not in record.getMessage() for record in caplog.records)
    assert mock_server.recorder.total_accepted == 1


async def test_sending_on_a_closed_client_says_so() -> None:
    client = g.AsyncGupshupClient(APP_ID, TOKEN)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.send(TO, g.Text(body="hi"))


@pytest.mark.parametrize(
    ("base_url", "says"),
    [
        ("partner.gupshup.io", "must start with https://"),
        ("https//partner.gupshup.io", "must start with https://"),
        ("ftp://partner.gupshup.io", "must use https://, not ftp://"),
        ("https://", "must start with https://"),
        ("https://host:port", "not a valid URL"),
        ("https://partner.gupshup.io/?x=1", "no query"),
        ("https://user:pw@partner.gupshup.io", "must not hold a user or password"),
        ("http://partner.gupshup.io", "unencrypted"),
        ("http://10.0.0.5:8080", "unencrypted"),
    ],
)
def test_a_base_url_that_cannot_work_or_leaks_the_token_is_refused(
    base_url: str, says: str
) -> None:
    with pytest.raises(ValueError, match="base_url") as info:
        g.AsyncGupshupClient(APP_ID, TOKEN, base_url=base_url)
    assert says in str(info.value)
    assert "pw" not in str(info.value)


@pytest.mark.parametrize(
    ("base_url", "insecure"),
    [
        ("https://partner.gupshup.io", False),
        ("http://127.0.0.1:8080", False),
        ("http://127.1.2.3", False),
        ("http://localhost:9000/", False),
        ("http://[::1]:8080", False),
        ("http://gupshup.internal:8080", True),
    ],
)
async def test_https_loopback_http_and_explicit_insecure_http_are_accepted(
    base_url: str, insecure: bool
) -> None:
    async with g.AsyncGupshupClient(
        APP_ID, TOKEN, base_url=base_url, allow_insecure_http=insecure
    ) as client:
        assert client.base_url == base_url.rstrip("/")


@pytest.mark.parametrize(
    ("base_url", "loopback"),
    [
        ("http://[::ffff:127.0.0.1]:8080", True),
        ("http://[::ffff:7f00:1]", True),  # the same address in hex
        ("http://[::FFFF:127.9.9.9]/", True),
        ("http://[::ffff:10.0.0.1]", False),
        ("http://[::ffff:8.8.8.8]:8080", False),
        ("http://[::ffff:0.0.0.0]", False),
        ("http://[::127.0.0.1]", False),  # IPv4-compatible (deprecated), not mapped
    ],
)
async def test_an_ipv4_mapped_loopback_address_takes_plain_http_and_no_other_mapped_one_does(
    base_url: str, loopback: bool
) -> None:
    if not loopback:
        with pytest.raises(ValueError, match="would send the token unencrypted"):
            g.AsyncGupshupClient(APP_ID, TOKEN, base_url=base_url)
        return
    async with g.AsyncGupshupClient(APP_ID, TOKEN, base_url=base_url) as client:
        assert client.base_url == base_url.rstrip("/")


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"timeout": float("nan")}, ValueError, "timeout"),
        ({"timeout": float("inf")}, ValueError, "timeout"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": -1.0}, ValueError, "timeout"),
        ({"max_connections": 0}, ValueError, "max_connections must be >= 1"),
        ({"max_response_bytes": 10}, ValueError, "max_response_bytes must be >= 1024"),
        ({"max_retries": 3, "retry_policy": g.RetryPolicy()}, TypeError, "not both"),
    ],
)
def test_settings_that_cannot_work_are_refused(
    kwargs: dict[str, Any], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        g.AsyncGupshupClient(APP_ID, TOKEN, **kwargs)


def test_max_retries_alone_and_retry_policy_alone_both_apply() -> None:
    assert g.AsyncGupshupClient(APP_ID, TOKEN, max_retries=5).retry_policy.max_retries == 5
    policy = g.RetryPolicy(max_retries=7)
    assert g.AsyncGupshupClient(APP_ID, TOKEN, retry_policy=policy).retry_policy.max_retries == 7
    assert g.AsyncGupshupClient(APP_ID, TOKEN).retry_policy.max_retries == 2


@pytest.mark.parametrize(
    ("reply_to", "says"),
    [
        ("wamid.\ud800x", "reply_to must be valid Unicode text: it holds a lone surrogate"),
        ("w" * 1_048_576, "reply_to must be at most 256 characters"),
    ],
)
async def test_a_reply_to_that_cannot_be_an_id_is_refused_before_any_request(
    router: respx.Router, client: g.AsyncGupshupClient, reply_to: str, says: str
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    with pytest.raises(ValueError, match=says):
        await client.send(TO, g.Text(body="hi"), reply_to=reply_to)
    assert route.call_count == 0


async def test_send_result_fields_keep_only_strings(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    answer = {"contacts": [{"wa_id": 123, "input": ["x"]}], "messages": [{"id": "gs-9"}]}
    router.post(SEND_URL).respond(200, json=answer)
    result = await client.send(TO, g.Text(body="hi"))
    assert (result.message_id, result.wa_id, result.input) == ("gs-9", None, None)
    assert result.raw == answer


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (b'{"messages": [{"id": "gs-1"}],  "x": 1.50, "y": "caf\xc3\xa9"}', True),
        (b'\xef\xbb\xbf{"messages": [{"id": "gs-1"}]}', False),  # a BOM: json.loads skips it
        ('{"messages": [{"id": "gs-1"}]}'.encode("utf-16-le"), False),  # json reads UTF-16 too
        (b'{"messages": [{"id": "gs-1"}], "z": "\xed\xa0\x80"}', False),  # a lone surrogate
        (b' {"messages": [{"id": "gs-1"}]}', False),  # leading space: not kept, still parsed
    ],
)
def test_a_success_keeps_its_text_only_when_it_is_what_json_read(body: bytes, kept: bool) -> None:
    result = _parse_success(200, body)
    assert result.message_id == "gs-1"
    assert result.raw_json == (body.decode() if kept else "")
    if kept:
        assert json.loads(result.raw_json) == result.raw
