"""The partner endpoints around sending: tokens, media uploads and read receipts.

`PartnerClient` logs in (`POST /partner/account/login`, a partner token valid 24 h) or takes a
partner token, and gets app tokens (`GET /partner/app/{appId}/token`), each cached until it
expires; Gupshup allows the token endpoint 10 calls a minute, so calls beyond that wait.
`PartnerClient.app_token_provider(app_id)` is what `AsyncGupshupClient(token_provider=...)`
takes: after a 401 it asks for a fresh token once.

`mark_read` (here) and `upload_media` (in `_media_upload`) are the helpers behind the
client's methods of the same name.
No token, password or e-mail address reaches a repr, a log record or an exception.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import httpx

from ._errors import UnexpectedResponseError, error_from_response, json_object
from ._media_upload import UPLOAD_TIMEOUT, MediaSource, upload_media
from ._partner_http import Answer, exchange
from ._settings import Secret, check_app_id, check_base_url, check_message_id, check_timeout
from ._transport import create_http_client

#: The client reaches every partner helper through this module.
__all__ = [
    "READ_EVENT_PATH",
    "UPLOAD_TIMEOUT",
    "MediaSource",
    "PartnerClient",
    "TokenProvider",
    "mark_read",
    "upload_media",
]

DEFAULT_BASE_URL = "https://partner.gupshup.io"
PARTNER_TOKEN_TTL = 24 * 3600.0
#: A token is renewed this many seconds before it expires, so no send carries a dying one.
EXPIRY_MARGIN = 300.0
TOKEN_CALLS_PER_MINUTE = 10
#: Where Gupshup documents the read receipt (`message-event`); the path is still to be
#: confirmed against the live API (NOTES.md).
READ_EVENT_PATH = "/partner/app/{app_id}/v1/event"


@runtime_checkable
class TokenProvider(Protocol):
    """Gives the app token for each send; `refresh_from` asks for one newer than a refused one."""

    async def get_token(self, *, refresh_from: str | None = None) -> str:
        """The current token; with `refresh_from`, a fresh one unless it was already renewed."""
        ...


class PartnerClient:
    """Partner and app tokens from Gupshup's partner API, cached until they expire.

    Give `email` and `password` (the partner token is fetched, and fetched again after 24 h
    or a 401), or a `partner_token`. `clock` (monotonic seconds), `wall_clock` (epoch seconds)
    and `sleep` are injectable for tests. Use it as an async context manager or `aclose()`.
    """

    def __init__(
        self,
        *,
        email: str | None = None,
        password: str | None = None,
        partner_token: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if partner_token is None and (not email or not password):
            raise ValueError("give email and password, or a partner_token")
        if partner_token is not None and not partner_token.strip():
            raise ValueError("partner_token must not be empty")
        check_base_url(base_url)
        self.base_url = base_url.rstrip("/")
        self._timeout = check_timeout(timeout)
        self._email = email
        self._password = None if password is None else Secret(password)
        self._partner_token = None if partner_token is None else Secret(partner_token)
        self._partner_expires = float("inf") if partner_token is not None else 0.0
        self._app_tokens: dict[str, tuple[Secret, float]] = {}
        self._owns_http = http_client is None
        self._http = http_client or create_http_client(timeout=timeout)
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._token_calls: collections.deque[float] = collections.deque()

    def __repr__(self) -> str:
        return f"PartnerClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> PartnerClient:
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

    async def partner_token(self, *, refresh_from: str | None = None) -> Secret:
        """The partner token: logged in once per 24 h, or again when `refresh_from` was refused."""
        async with self._lock:
            return await self._partner_token_locked(refresh_from)

    async def app_token(self, app_id: str, *, refresh_from: str | None = None) -> Secret:
        """The app token of `app_id`, cached until `expiresOn`; fetched again once it was refused.

        Concurrent callers refused with the same token share one fetch.
        """
        check_app_id(app_id)
        async with self._lock:
            cached = self._app_tokens.get(app_id)
            fresh = cached is not None and self._wall_clock() < cached[1] - EXPIRY_MARGIN
            if cached is not None and fresh and cached[0] != refresh_from:
                return cached[0]
            token, expires = await self._fetch_app_token(app_id)
            self._app_tokens[app_id] = (token, expires)
            return token

    def app_token_provider(self, app_id: str) -> TokenProvider:
        """A `TokenProvider` of `app_id`'s token, for `AsyncGupshupClient(token_provider=...)`."""
        return _AppTokenProvider(self, app_id)

    async def _partner_token_locked(self, refresh_from: str | None) -> Secret:
        token = self._partner_token
        if token is not None and self._clock() < self._partner_expires and token != refresh_from:
            return token
        if not self._email or not self._password:
            raise ValueError(
                "the partner token was refused and there is no email/password to log in again"
            )
        await self._pace_token_call()  # login shares the 10-a-minute budget
        response = await exchange(
            self._http,
            "POST",
            f"{self.base_url}/partner/account/login",
            data={"email": self._email, "password": self._password},
            timeout=self._timeout,
        )
        token = _token_from(response, "login", lambda data: data.get("token"))
        self._partner_token = token
        self._partner_expires = self._clock() + PARTNER_TOKEN_TTL - EXPIRY_MARGIN
        return token

    async def _fetch_app_token(self, app_id: str) -> tuple[Secret, float]:
        partner = await self._partner_token_locked(None)
        response = await self._get_app_token(app_id, partner)
        if response.status == 401 and self._email:
            partner = await self._partner_token_locked(partner)
            response = await self._get_app_token(app_id, partner)
        details: dict[str, Any] = {}

        def pick(data: dict[str, Any]) -> Any:
            inner = data.get("token")
            if isinstance(inner, dict):
                details.update(inner)
                return inner.get("token")
            return None

        token = _token_from(response, "app token", pick)
        return token, _expiry(details.get("expiresOn"))

    async def _get_app_token(self, app_id: str, partner: Secret) -> Answer:
        await self._pace_token_call()
        return await exchange(
            self._http,
            "GET",
            f"{self.base_url}/partner/app/{app_id}/token",
            headers={"Authorization": partner},
            timeout=self._timeout,
        )

    async def _pace_token_call(self) -> None:
        """Wait so that no 60 s window holds more than `TOKEN_CALLS_PER_MINUTE` calls."""
        calls = self._token_calls
        while len(calls) >= TOKEN_CALLS_PER_MINUTE:
            wait = calls[0] + 60.0 - self._clock()
            if wait <= 0:
                calls.popleft()
                continue
            await self._sleep(wait)
        calls.append(self._clock())


class _AppTokenProvider:
    def __init__(self, partner: PartnerClient, app_id: str) -> None:
        self._partner = partner
        self._app_id = app_id

    def __repr__(self) -> str:
        return f"AppTokenProvider(app_id={self._app_id!r})"

    async def get_token(self, *, refresh_from: str | None = None) -> Secret:
        return await self._partner.app_token(self._app_id, refresh_from=refresh_from)


def _token_from(response: Answer, what: str, pick: Callable[[dict[str, Any]], Any]) -> Secret:
    """The token in a token answer; an error answer raises its `APIError` (no token in it)."""
    if not 200 <= response.status < 300:
        raise error_from_response(response.status, response.text)
    data = json_object(response.content) if response.problem is None else None
    token = pick(data) if data is not None else None
    if not isinstance(token, str) or not token or any(c.isspace() for c in token):
        # The body is left out on purpose: it may hold a token.
        raise UnexpectedResponseError(
            f"{what} answer without a usable token", status_code=response.status
        )
    return Secret(token)


def _expiry(expires_on: Any) -> float:
    """`expiresOn` as epoch seconds: 0 or absent means no stated expiry; ms are recognised."""
    if isinstance(expires_on, bool) or not isinstance(expires_on, int | float) or expires_on <= 0:
        return float("inf")
    return expires_on / 1000.0 if expires_on > 1e11 else float(expires_on)


def read_receipt(message_id: str, *, typing: bool) -> dict[str, Any]:
    """Meta's read receipt (and typing indicator) inside Gupshup's `message-event` envelope."""
    check_message_id(message_id, "message_id")
    if not isinstance(typing, bool):
        raise ValueError(f"typing must be True or False, got {typing!r}")
    event: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": message_id,
    }
    if typing:
        event["typing_indicator"] = {"type": "text"}
    return {"type": "message-event", "message": event}


async def mark_read(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    message_id: str,
    *,
    typing: bool,
    timeout: float,
) -> None:
    """Post a read receipt within `timeout` seconds; raises the `APIError` of a refusal."""
    body = json.dumps(read_receipt(message_id, typing=typing)).encode()
    response = await exchange(
        http,
        "POST",
        url,
        headers={**headers, "Content-Type": "application/json"},
        content=body,
        timeout=timeout,
    )
    if not 200 <= response.status < 300:
        raise error_from_response(response.status, response.text)
