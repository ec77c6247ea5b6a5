"""AsyncGupshupClient: one shared `httpx.AsyncClient`, `send()`, retries, `aclose()`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import httpx

from ._errors import (
    APIError,
    GupshupError,
    InvalidCredentialsError,
    UnexpectedResponseError,
    error_from_response,
)
from ._message_base import MessageModel
from ._messages import Message
from ._recipients import mask_recipient, normalize_recipient
from ._retry import DEFAULT_MAX_RETRIES, RetryPolicy, parse_retry_after
from ._transport import (
    DEFAULT_MAX_CONNECTIONS,
    classify_transport_error,
    create_http_client,
    create_transport,
)
from ._version import __version__

logger = logging.getLogger("gupshup_async")

DEFAULT_BASE_URL = "https://partner.gupshup.io"
DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"gupshup-async/{__version__}"

_APP_ID_FORBIDDEN = frozenset("/?#%")
#: Meta's limit on `biz_opaque_callback_data`, echoed back in the message's status webhooks.
MAX_CALLBACK_DATA = 512


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the API answered for one accepted message.

    `message_id` is Gupshup's id (`gs_id` in webhooks); `raw` is the whole JSON answer.
    """

    message_id: str
    wa_id: str | None
    input: str | None
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One HTTP attempt, for logging and metrics hooks; carries no token and a masked number."""

    attempt: int
    recipient: str
    status_code: int | None
    error: GupshupError | None
    retry_in: float | None


def encode_message(message: Message) -> str:
    """The message's `"type":...,"<type>":{...}` JSON members, encoded once, emoji as UTF-8."""
    if not isinstance(message, MessageModel):
        raise TypeError(
            f"message must be a message model such as Text or Image, not {type(message).__name__}"
            "; build one from the API's JSON with message_from_wire()"
        )
    return json.dumps(message.to_wire(), ensure_ascii=False, separators=(",", ":"))[1:-1]


def encode_body(
    digits: str,
    fragment: str,
    reply_to: str | None = None,
    biz_opaque_callback_data: str | None = None,
) -> bytes:
    """The full request body around a pre-encoded message fragment."""
    context = ""
    if reply_to is not None:
        if not isinstance(reply_to, str) or not reply_to.strip():
            raise ValueError("reply_to must be the non-empty id of the message to quote")
        context = ',"context":{"message_id":' + json.dumps(reply_to, ensure_ascii=False) + "}"
    if biz_opaque_callback_data is not None:
        check_callback_data(biz_opaque_callback_data)
        context += ',"biz_opaque_callback_data":' + json.dumps(
            biz_opaque_callback_data, ensure_ascii=False
        )
    return (
        '{"messaging_product":"whatsapp","recipient_type":"individual","to":"'
        + digits
        + '",'
        + fragment
        + context
        + "}"
    ).encode()


class AsyncGupshupClient:
    """Sends v3 session messages for one app over one shared, pooled `httpx.AsyncClient`.

    Use it as an async context manager or call `aclose()`. A caller-supplied `http_client` is
    used as it is and never closed here. The token goes into one header and nowhere else.
    """

    def __init__(
        self,
        app_id: str,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_ambiguous: bool = False,
        retry_policy: RetryPolicy | None = None,
        on_attempt: Callable[[AttemptEvent], None] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        check_app_id(app_id)
        check_token(token)
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.app_id = app_id
        self.base_url = base_url.rstrip("/")
        self._url = httpx.URL(f"{self.base_url}/partner/app/{app_id}/v3/message")
        self._headers = httpx.Headers(
            {"Authorization": token, "Content-Type": "application/json", "User-Agent": USER_AGENT}
        )
        self._owns_http = http_client is None
        # With our own client there are no hooks, auth, cookies or redirects to honour, so a
        # send goes straight to the transport: half the CPU of `AsyncClient.send` (measured).
        self._transport: httpx.AsyncBaseTransport | None = None
        if http_client is None:
            self._transport = create_transport(max_connections=max_connections)
            http_client = create_http_client(timeout=timeout, transport=self._transport)
        self._http = http_client
        self._extensions = {"timeout": self._http.timeout.as_dict()}
        policy = retry_policy or RetryPolicy()
        self.retry_policy = replace(
            policy,
            max_retries=max_retries if retry_policy is None else policy.max_retries,
            retry_ambiguous=retry_ambiguous or policy.retry_ambiguous,
        )
        self.on_attempt = on_attempt

    def __repr__(self) -> str:
        return f"AsyncGupshupClient(app_id={self.app_id!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> AsyncGupshupClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool, unless it was passed in by the caller."""
        if self._owns_http:
            await self._http.aclose()

    async def send(
        self,
        to: str,
        message: Message,
        *,
        reply_to: str | None = None,
        max_retries: int | None = None,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        """Send one message to `to`; retry what the policy allows; raise a `GupshupError`.

        `to` and `message` are validated before any request (`ValueError` on bad input).
        `reply_to` quotes an earlier message by its id. `max_retries` overrides the client's.
        `biz_opaque_callback_data` (at most 512 characters) comes back in the message's
        status webhooks (Meta's field; whether Gupshup passes it through is not documented).
        """
        digits = normalize_recipient(to)
        body = encode_body(digits, encode_message(message), reply_to, biz_opaque_callback_data)
        return await self.send_encoded(digits, body, max_retries=max_retries)

    async def send_encoded(
        self, digits: str, body: bytes, *, max_retries: int | None = None
    ) -> SendResult:
        """Send a body built by `encode_body` for the already normalised `digits`, with retries."""
        policy = self.retry_policy
        retries = 0
        while True:
            try:
                result = await self.post_once(body)
            except GupshupError as error:
                retry = policy.should_retry(error, retries, max_retries)
                wait = policy.wait_for(error, retries) if retry else None
                self.report_attempt(retries + 1, digits, error, wait)
                if wait is None:
                    raise
                await policy.sleep(wait)
                retries += 1
                continue
            self.report_attempt(retries + 1, digits, None, None)
            return result

    async def post_once(self, body: bytes) -> SendResult:
        """One HTTP attempt, no retry: the building block of `send` and of the bulk sender."""
        if self._http.is_closed:
            raise RuntimeError("this AsyncGupshupClient is closed; make a new one to send")
        try:
            if self._transport is not None:
                request = httpx.Request(
                    "POST",
                    self._url,
                    headers=self._headers,
                    content=body,
                    extensions=self._extensions,
                )
                response = await self._transport.handle_async_request(request)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            else:
                request = self._http.build_request(
                    "POST", self._url, headers=self._headers, content=body
                )
                response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise classify_transport_error(exc) from exc
        status = response.status_code
        if 200 <= status < 300:
            return _parse_success(status, response.content)
        raise error_from_response(
            status, response.text, retry_after=parse_retry_after(response.headers)
        )

    def report_attempt(
        self, attempt: int, digits: str, error: GupshupError | None, wait: float | None
    ) -> None:
        """Log one attempt and pass it to `on_attempt`: for `send` and the bulk sender alike."""
        status = error.status_code if isinstance(error, APIError) else None
        if error is None:
            status = 200
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "send attempt=%d to=%s status=%s error=%s retry_in=%s",
                attempt,
                mask_recipient(digits),
                status,
                type(error).__name__ if error else None,
                None if wait is None else round(wait, 3),
            )
        if self.on_attempt is not None:
            self.on_attempt(AttemptEvent(attempt, mask_recipient(digits), status, error, wait))


def _parse_success(status: int, content: bytes) -> SendResult:
    text = content.decode("utf-8", errors="replace")
    try:
        raw = json.loads(content)
        message_id = raw["messages"][0]["id"]
        if not isinstance(message_id, str) or not message_id:
            raise TypeError
    except (ValueError, KeyError, IndexError, TypeError):
        raise UnexpectedResponseError(
            "success answer without a message id: the message may have been accepted",
            status_code=status,
            body=text,
            ambiguous=True,
        ) from None
    contacts = raw.get("contacts")
    contact = contacts[0] if isinstance(contacts, list) and contacts else {}
    if not isinstance(contact, dict):
        contact = {}
    return SendResult(
        message_id=message_id, wa_id=contact.get("wa_id"), input=contact.get("input"), raw=raw
    )


def check_callback_data(value: str) -> None:
    """Refuse a `biz_opaque_callback_data` that is not a string of 1-512 characters."""
    if not isinstance(value, str):
        raise ValueError(f"biz_opaque_callback_data must be a string, not {type(value).__name__}")
    if not 0 < len(value) <= MAX_CALLBACK_DATA:
        raise ValueError(
            f"biz_opaque_callback_data must be 1-{MAX_CALLBACK_DATA} characters, got {len(value)}"
        )


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
