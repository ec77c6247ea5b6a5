"""The exception tree, and the one function that maps an HTTP answer onto it.

```
GupshupError                  .ambiguous: the message may have been delivered
├── APIConnectionError        no usable answer came back
│   └── APITimeoutError       (ambiguous when the request was already written)
└── APIError                  .status_code .code .message .body .retry_after
    ├── BadRequestError       400
    ├── AuthenticationError   401
    ├── PermissionDeniedError 403
    ├── RateLimitError        429 and the throttling codes, whatever the status
    ├── ServerError           5xx
    └── UnexpectedResponseError  2xx whose body is not the v3 success shape
```

Bad input never gets this far: it raises `ValueError` (pydantic's `ValidationError`, or
`InvalidRecipientError` / `InvalidCredentialsError`) before any request is made.
No exception here ever holds the token: the request headers stay on the chained httpx error only.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

#: Meta and Gupshup error codes that mean "slow down", whatever the HTTP status says.
THROTTLING_CODES = frozenset({4, 80007, 130429, 131056, 4001})
#: Throttling codes that depend on the account's sending rate (the shared rate should drop);
#: 131056 is about one recipient, 4001 is Gupshup's "API rate limited" (contact them).
RATE_THROTTLING_CODES = frozenset({4, 80007, 130429})
#: The pair-rate code: one recipient was messaged too often.
_PAIR_RATE_CODE = 131056

#: Statuses where the server surely did not take the message, so a retry cannot duplicate it.
_NOT_DELIVERED_5XX = frozenset({503})

_BODY_EXCERPT = 200


class InvalidRecipientError(ValueError):
    """A phone number that is not 7-15 ASCII digits once `+`, spaces, `-` and `()` are removed."""


class InvalidCredentialsError(ValueError):
    """An app id or token that cannot be right (empty, whitespace, `Bearer ` prefix...).

    The message names the problem, never the token itself.
    """


class GupshupError(Exception):
    """Base of every error raised by a send once the input has been validated."""

    ambiguous: bool

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.ambiguous = ambiguous


class APIConnectionError(GupshupError):
    """No HTTP answer: connect failed, the connection dropped, or the pool ran dry.

    `ambiguous` is False only when the request provably never reached the server
    (connect refused, connect timeout, pool timeout).
    """


class APITimeoutError(APIConnectionError):
    """A timeout; ambiguous when it struck after the request was written (a read timeout)."""


class APIError(GupshupError):
    """The server answered with an error: status, provider code and raw body are kept."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: int | None = None,
        body: str = "",
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message, ambiguous=ambiguous)
        self.status_code = status_code
        self.code = code
        self.body = body
        self.retry_after = retry_after

    def __str__(self) -> str:
        code = f" code={self.code}" if self.code is not None else ""
        return f"HTTP {self.status_code}{code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, code={self.code!r}, "
            f"message={self.message!r}, ambiguous={self.ambiguous})"
        )


class BadRequestError(APIError):
    """400: the API refused the payload or the app details."""


class AuthenticationError(APIError):
    """401: the app token is wrong or expired."""


class _InvalidProviderTokenError(AuthenticationError, InvalidCredentialsError):
    """A 401 stands: the token provider's new token cannot be right (a `ValueError` too)."""


class PermissionDeniedError(APIError):
    """403: the token is valid but may not do this."""


class RateLimitError(APIError):
    """429, or a throttling code (4, 80007, 130429, 131056, 4001) under any status."""


class ServerError(APIError):
    """5xx; ambiguous unless the status says the message was not taken (503)."""


class UnexpectedResponseError(APIError):
    """A 2xx answer without a message id: the message may or may not have been accepted."""


def json_object(body: str | bytes) -> dict[str, Any] | None:
    """The JSON object an answer body holds, or None: the one way every answer is read.

    Never raises, whatever the body: not JSON, not an object, or nested thousands deep.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: a hostile body nested deep
        return None
    return data if isinstance(data, dict) else None


def parse_error_body(body: str) -> tuple[str | None, int | None]:
    """Return (message, code) from a Gupshup envelope, a Meta envelope, or neither.

    Never raises: non-JSON and odd shapes give (None, None).
    """
    data = json_object(body)
    if data is None:
        return None, None
    error = data.get("error")
    if isinstance(error, dict):  # Meta: {"error": {"message", "code", ...}}
        return _as_str(error.get("message")), _as_int(error.get("code"))
    message = data.get("message")
    if isinstance(message, dict):  # some Gupshup answers nest {"message": {"code", "text"}}
        return _as_str(message.get("text") or message.get("message")), _as_int(message.get("code"))
    return _as_str(message), _as_int(data.get("code"))


def error_from_response(
    status_code: int, body: str, *, retry_after: float | None = None
) -> APIError:
    """Pick the exception class from the provider code first, then from the HTTP status."""
    message, code = parse_error_body(body)
    if message is None:
        excerpt = body.strip()[:_BODY_EXCERPT]
        message = excerpt if excerpt and _looks_like_text(excerpt) else _reason(status_code)
    cls: type[APIError]
    ambiguous = False
    if status_code == 429 or code in THROTTLING_CODES:
        cls = RateLimitError
    elif status_code == 400:
        cls = BadRequestError
    elif status_code == 401:
        cls = AuthenticationError
    elif status_code == 403:
        cls = PermissionDeniedError
    elif status_code >= 500:
        cls = ServerError
        ambiguous = status_code not in _NOT_DELIVERED_5XX
    else:
        cls = APIError
    return cls(
        message,
        status_code=status_code,
        code=code,
        body=body,
        retry_after=retry_after,
        ambiguous=ambiguous,
    )


def is_rate_throttling(error: BaseException) -> bool:
    """Whether `error` is throttling that depends on the account's rate (429, 4, 80007, 130429).

    The pair-rate error 131056 concerns one recipient, whatever the status; 4001 under a
    status other than 429 says nothing about the rate.
    """
    if not isinstance(error, APIError) or error.code == _PAIR_RATE_CODE:
        return False
    return error.status_code == 429 or error.code in RATE_THROTTLING_CODES


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _looks_like_text(excerpt: str) -> bool:
    return not excerpt.lstrip().startswith("<")


def _reason(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Unknown error"
