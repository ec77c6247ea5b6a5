"""What a failed send says about its recipient: the one place that decides it.

Some failures are about the recipient (a 400 for a bad number, "not on WhatsApp", an opt-out):
that recipient is done. Others are about the channel and say nothing about the recipient:

- no connection at all: refused, DNS, TLS, connect or pool timeout (`APIConnectionError` that
  provably never reached the server);
- the credentials: 401, 403;
- the account: Gupshup code 4001 "API rate limited" and 1003 "wallet balance low", known by the
  `code` in the body whatever the HTTP status;
- the endpoint: 404 or 405 (a wrong path in the base URL answers every recipient alike);
- the server: 503 once its retries ran out (the message was not taken; a 503 storm would
  otherwise write the whole campaign off as failed);
- the account's rate: 429 and the rate codes 4, 80007, 130429 once their retries ran out (the
  account is throttled, the recipient is not at fault). The pair-rate error 131056 is about
  that one recipient and stays final.

Such a failure must never make a recipient final: the same recipient would very likely be
accepted once the channel works again, and it surely was not delivered.
"""

from __future__ import annotations

from ._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    PermissionDeniedError,
    is_rate_throttling,
    parse_error_body,
)

#: Statuses that say the request never reached a send endpoint able to take it.
CHANNEL_STATUSES = frozenset({404, 405, 503})

#: Gupshup codes about the account, not the recipient: 4001 API rate limited (stop and contact
#: Gupshup), 1003 wallet balance low.
ACCOUNT_CODES = frozenset({4001, 1003})


#: The API refusing the credentials (401, 403).
_CREDENTIAL_ERRORS = (AuthenticationError, PermissionDeniedError)


def says_nothing_about_recipient(error: BaseException | None) -> bool:
    """Whether `error` is about the channel (connection, credentials, account), not the recipient.

    Only failures that surely did not deliver qualify: an ambiguous connection error (the
    request may have been written) is about that recipient's message and is not one of them.
    """
    if error is None:  # a success: the common case of a bulk run, asked once per recipient
        return False
    if isinstance(error, APIConnectionError):
        return not error.ambiguous
    if isinstance(error, _CREDENTIAL_ERRORS):
        return True
    if (
        isinstance(error, APIError)
        and error.status_code in CHANNEL_STATUSES
        and not error.ambiguous
    ):
        return True
    if isinstance(error, APIError) and is_rate_throttling(error):
        return True
    return account_code(error) is not None


def account_code(error: BaseException | None) -> int | None:
    """The Gupshup account code (4001, 1003) `error` carries, in its `code` or its body."""
    if not isinstance(error, APIError):
        return None
    # A 2xx error envelope reaches us without its code parsed: read it from the body.
    code = error.code if error.code is not None else parse_error_body(error.body)[1]
    return code if code in ACCOUNT_CODES else None


def refuses_credentials(error: BaseException | None) -> bool:
    """Whether `error` is the API refusing the credentials (401/403): fixing them is on the user."""
    return isinstance(error, _CREDENTIAL_ERRORS)
