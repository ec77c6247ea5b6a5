"""The client's settings and inputs, checked before any request: each refusal says what is wrong.

Credentials, the base URL (https, or plain http only to a loopback host unless the caller
allows it), the timeout, and message ids (`reply_to`, `mark_read`). A message never contains
the token. A secret the SDK keeps is held as a `Secret`, whose repr hides it, so an error
reporter that prints frame locals (Sentry, `traceback` with `capture_locals`) shows none.
"""

from __future__ import annotations

import ipaddress
import math
from urllib.parse import urlsplit

from ._errors import InvalidCredentialsError

_APP_ID_FORBIDDEN = frozenset("/?#%")
#: The longest message id accepted (`reply_to`, `mark_read`), in characters (a wamid is about
#: 60, a gs_id 36).
REPLY_TO_MAX_LENGTH = 256


class Secret(str):
    """A token or password: the string itself on the wire, `'[secure]'` in any repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'[secure]'"


def check_timeout(timeout: object, field: str = "timeout") -> float:
    """`timeout` as float seconds, refused unless it is a finite number > 0 (it must bound)."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ValueError(f"{field} must be a number of seconds, got {type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"{field} must be a finite number of seconds > 0, got {timeout}")
    return float(timeout)


def check_app_id(app_id: str) -> None:
    """Refuse an app id that cannot be right, before it reaches a URL."""
    if not isinstance(app_id, str) or not app_id:
        raise InvalidCredentialsError("app_id must be a non-empty string")
    if any(c.isspace() or not c.isprintable() for c in app_id):
        raise InvalidCredentialsError("app_id must not contain whitespace or control characters")
    if _APP_ID_FORBIDDEN.intersection(app_id):
        raise InvalidCredentialsError("app_id must not contain URL characters '/', '?', '#', '%'")


def check_token(token: str) -> None:
    """Refuse a token that cannot be right; the message never contains the token."""
    if not isinstance(token, str) or not token:
        raise InvalidCredentialsError("token must be a non-empty string")
    if token[:7].lower() == "bearer ":
        raise InvalidCredentialsError(
            "token must be the raw app token: drop the 'Bearer ' prefix (v3 does not use it)"
        )
    if any(c.isspace() or not c.isprintable() or not c.isascii() for c in token):
        raise InvalidCredentialsError(
            "token must not contain whitespace, control or non-ASCII characters"
        )


def checked_token(token: object) -> Secret:
    """`token` checked as `check_token` does, and held as a `Secret` (no frame keeps it bare)."""
    secret = Secret(token) if isinstance(token, str) else token
    del token
    check_token(secret)  # type: ignore[arg-type]  # it refuses a non-string itself
    return secret  # type: ignore[return-value]


def check_base_url(base_url: str, *, allow_insecure_http: bool = False) -> None:
    """Refuse a base URL that cannot work, or that would send the token in clear text.

    Plain http is allowed for a loopback host (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104,
    localhost) or with `allow_insecure_http=True`.
    """
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError("base_url must be a URL such as https://partner.gupshup.io")
    try:
        parts = urlsplit(base_url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"base_url is not a valid URL: {exc}") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("base_url must not hold a user or password (the token authenticates)")
    if not parts.scheme or not parts.netloc:
        raise ValueError(
            f"base_url {base_url!r} must start with https:// followed by a host "
            "(for example https://partner.gupshup.io)"
        )
    if parts.scheme not in ("https", "http"):
        raise ValueError(f"base_url {base_url!r} must use https://, not {parts.scheme}://")
    if not host:
        raise ValueError(f"base_url {base_url!r} has no host")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url {base_url!r} must have no query (?) or fragment (#)")
    if parts.scheme == "http" and not (allow_insecure_http or _is_loopback(host)):
        raise ValueError(
            f"base_url {base_url!r} would send the token unencrypted: use https://, "
            "or pass allow_insecure_http=True (plain http is allowed for a loopback host)"
        )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # Python before 3.13 calls `::ffff:127.0.0.1` (IPv4 loopback written as IPv6) not loopback.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_reply_to(reply_to: object) -> None:
    """Refuse a `reply_to` that cannot be a message id, naming the field and the limit."""
    check_message_id(reply_to, "reply_to")


def check_message_id(message_id: object, field: str) -> None:
    """Refuse a message id (`field`) that cannot be one: empty, too long, not valid Unicode."""
    if not isinstance(message_id, str) or not message_id.strip():
        raise ValueError(f"{field} must be the non-empty id of a message")
    if len(message_id) > REPLY_TO_MAX_LENGTH:
        raise ValueError(
            f"{field} must be at most {REPLY_TO_MAX_LENGTH} characters (a message id), "
            f"got {len(message_id)}"
        )
    try:
        message_id.encode()
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{field} must be valid Unicode text: it holds a lone surrogate at index {exc.start}"
        ) from None
