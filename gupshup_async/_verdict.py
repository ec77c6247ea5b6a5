"""What a failed send says about its recipient: the one place that decides it.

Some failures are about the recipient (a 400 for a bad number, "not on WhatsApp", an opt-out):
that recipient is done. Others are about the channel and say nothing about the recipient:

- no connection at all: refused, DNS, TLS, connect or pool timeout (`APIConnectionError` that
  provably never reached the server);
- the credentials: 401, 403;
- the account: Gupshup code 4001 "API rate limited" and 1003 "wallet balance low", known by the
  `code` in the body whatever the HTTP status.

Such a failure must never make a recipient final: the same recipient would very likely be
accepted once the channel works again, and it surely was not delivered.
"""

from __future__ import annotations

from ._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    PermissionDeniedError,
    parse_error_body,
)

#: Gupshup codes about the account, not the recipient: 4001 API rate limited (stop and contact
#: Gupshup), 1003 wallet balance low.
ACCOUNT_CODES = frozenset({4001, 1003})


def says_nothing_about_recipient(error: BaseException | None) -> bool:
    """Whether `error` is about the channel (connection, credentials, account), not the recipient.

    Only failures that surely did not deliver qualify: an ambiguous connection error (the
    request may have been written) is about that recipient's message and is not one of them.
    """
    if isinstance(error, APIConnectionError):
        return not error.ambiguous
    if isinstance(error, AuthenticationError | PermissionDeniedError):
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
    return isinstance(error, AuthenticationError | PermissionDeniedError)
