from __future__ import annotations

import json

import pytest
import respx

import gupshup_async as g
from gupshup_async._errors import error_from_response, parse_error_body

from .conftest import SEND_URL, TOKEN
from .reference_examples import TO

META_THROTTLE = {
    "error": {
        "message": "(#130429) Rate limit hit",
        "type": "OAuthException",
        "code": 130429,
        "error_data": {"details": "throughput"},
        "fbtrace_id": "A1",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "cls", "message", "code", "ambiguous"),
    [
        (400, {"status": "error", "message": "Invalid App Details"}, g.BadRequestError, "Invalid App Details", None, False),
        (401, {"status": "error", "message": "Authentication Failed"}, g.AuthenticationError, "Authentication Failed", None, False),
        (403, {"status": "error", "message": "Forbidden"}, g.PermissionDeniedError, "Forbidden", None, False),
        (429, {"status": "error", "message": "Too Many Requests"}, g.RateLimitError, "Too Many Requests", None, False),
        (500, {"status": "error", "message": "Internal Server Error"}, g.ServerError, "Internal Server Error", None, True),
        (502, {"status": "error", "message": "Bad Gateway"}, g.ServerError, "Bad Gateway", None, True),
        (503, {"status": "error", "message": "Service Unavailable"}, g.ServerError, "Service Unavailable", None, False),
        (504, {"status": "error", "message": "Gateway Timeout"}, g.ServerError, "Gateway Timeout", None, True),
        (400, META_THROTTLE, g.RateLimitError, "(#130429) Rate limit hit", 130429, False),
        (400, {"error": {"message": "(#131056) pair rate", "code": 131056}}, g.RateLimitError, "(#131056) pair rate", 131056, False),
        (400, {"error": {"message": "(#4) Too many calls", "code": 4}}, g.RateLimitError, "(#4) Too many calls", 4, False),
        (400, {"error": {"message": "spam", "code": 80007}}, g.RateLimitError, "spam", 80007, False),
        (200 + 200, {"status": "error", "message": "limited", "code": 4001}, g.RateLimitError, "limited", 4001, False),
        (400, {"error": {"message": "(#131047) Re-engagement", "code": 131047}}, g.BadRequestError, "(#131047) Re-engagement", 131047, False),
        (401, {"error": {"message": "token expired", "code": 190}}, g.AuthenticationError, "token expired", 190, False),
        (404, {"status": "error", "message": "Not Found"}, g.APIError, "Not Found", None, False),
    ],
)  # fmt: skip
async def test_status_and_body_pick_the_class_and_fields(
    router: respx.Router,
    client: g.AsyncGupshupClient,
    status: int,
    body: dict[str, object],
    cls: type[g.APIError],
    message: str,
    code: int | None,
    ambiguous: bool,
) -> None:
    router.post(SEND_URL).respond(status, json=body)
    with pytest.raises(g.APIError) as info:
        await client.send(TO, g.Text(body="hi"), max_retries=0)
    error = info.value
    assert type(error) is cls
    assert (error.status_code, error.code, error.message, error.ambiguous) == (
        status,
        code,
        message,
        ambiguous,
    )
    assert json.loads(error.body) == body
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)


@pytest.mark.parametrize(
    ("status", "text", "message", "cls"),
    [
        (502, "<html><h1>502 Bad Gateway</h1></html>", "Bad Gateway", g.ServerError),
        (500, "", "Internal Server Error", g.ServerError),
        (500, "upstream exploded", "upstream exploded", g.ServerError),
        (429, "{truncated", "{truncated", g.RateLimitError),
        (400, "[1, 2]", "[1, 2]", g.BadRequestError),
    ],
)
async def test_non_json_bodies_never_raise_a_parsing_error(
    router: respx.Router,
    client: g.AsyncGupshupClient,
    status: int,
    text: str,
    message: str,
    cls: type[g.APIError],
) -> None:
    router.post(SEND_URL).respond(status, text=text)
    with pytest.raises(cls) as info:
        await client.send(TO, g.Text(body="hi"), max_retries=0)
    assert info.value.message == message
    assert info.value.body == text
    assert info.value.code is None


def test_str_is_one_loggable_line() -> None:
    error = error_from_response(429, json.dumps(META_THROTTLE), retry_after=2.0)
    assert str(error) == "HTTP 429 code=130429: (#130429) Rate limit hit"
    assert error.retry_after == 2.0
    assert "\n" not in str(error)


def test_nested_gupshup_message_is_parsed() -> None:
    assert parse_error_body('{"message": {"code": 1002, "text": "not on WhatsApp"}}') == (
        "not on WhatsApp",
        1002,
    )


def test_errors_are_value_errors_or_gupshup_errors() -> None:
    assert issubclass(g.InvalidRecipientError, ValueError)
    assert issubclass(g.InvalidCredentialsError, ValueError)
    for cls in (g.APIConnectionError, g.APITimeoutError, g.APIError, g.RateLimitError):
        assert issubclass(cls, g.GupshupError)
    assert issubclass(g.APITimeoutError, g.APIConnectionError)
