"""What a failure says about its recipient: the channel's failures are told apart once."""

from __future__ import annotations

import json

import pytest

from gupshup_async._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    UnexpectedResponseError,
    error_from_response,
)
from gupshup_async._verdict import account_code, says_nothing_about_recipient


def _answer(status: int, code: int | None = None, message: str = "x") -> APIError:
    body = {"status": "error", "message": message}
    if code is not None:
        body["code"] = code  # type: ignore[assignment]
    return error_from_response(status, json.dumps(body))


@pytest.mark.parametrize(
    ("error", "channel"),
    [
        (APIConnectionError("connection failed: refused", ambiguous=False), True),
        (APITimeoutError("connect timed out", ambiguous=False), True),
        (APIConnectionError("connection lost", ambiguous=True), False),  # may have delivered
        (APITimeoutError("read timed out", ambiguous=True), False),
        (_answer(401), True),
        (_answer(403), True),
        (_answer(400, 1003, "Wallet balance low"), True),
        (_answer(500, 1003, "Wallet balance low"), True),
        (_answer(429, 4001, "API rate limited"), True),
        (_answer(200, 4001), True),
        (_answer(400, 1002, "Number does not exist on WhatsApp"), False),  # about the number
        (_answer(400), False),
        (_answer(429), False),
        (_answer(504), False),
        (None, False),
        (ValueError("bad number"), False),
    ],
)  # fmt: skip
def test_says_nothing_about_recipient(error: BaseException | None, channel: bool) -> None:
    assert says_nothing_about_recipient(error) is channel


def test_an_account_code_in_a_2xx_body_is_read_from_the_body() -> None:
    body = json.dumps({"status": "error", "code": "1003", "message": "Wallet balance low"})
    error = UnexpectedResponseError("no id", status_code=200, body=body, ambiguous=True)
    assert account_code(error) == 1003
    assert says_nothing_about_recipient(error)
