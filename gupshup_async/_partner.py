"""The partner endpoints around sending: tokens, media uploads and read receipts.

`PartnerClient` logs in (`POST /partner/account/login`, a partner token valid 24 h) or takes a
partner token, and gets app tokens (`GET /partner/app/{appId}/token`), each cached until it
expires; Gupshup allows the token endpoint 10 calls a minute, so calls beyond that wait.
`PartnerClient.app_token_provider(app_id)` is what `AsyncGupshupClient(token_provider=...)`
takes: after a 401 it asks for a fresh token once.

`upload_media` and `mark_read` are the helpers behind the client's methods of the same name.
No token, password or e-mail address reaches a repr, a log record or an exception.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import IO, Any, Protocol, runtime_checkable

import httpx

from ._errors import UnexpectedResponseError, error_from_response
from ._transport import create_http_client

DEFAULT_BASE_URL = "https://partner.gupshup.io"
PARTNER_TOKEN_TTL = 24 * 3600.0
#: A token is renewed this many seconds before it expires, so no send carries a dying one.
EXPIRY_MARGIN = 300.0
TOKEN_CALLS_PER_MINUTE = 10
MEDIA_MAX_BYTES = 100 * 1024 * 1024
#: Seconds each read or write of an upload may take (100 MB on a slow uplink takes minutes).
UPLOAD_TIMEOUT = 120.0

_MB = 1024 * 1024
#: Meta's media types and size limits per kind (images 5 MB, video and audio 16 MB, documents
#: 100 MB, stickers 500 KB animated / 100 KB static: a static one cannot be told apart here).
MEDIA_LIMITS: dict[str, int] = {
    "image/jpeg": 5 * _MB,
    "image/png": 5 * _MB,
    "video/mp4": 16 * _MB,
    "video/3gpp": 16 * _MB,
    "audio/aac": 16 * _MB,
    "audio/amr": 16 * _MB,
    "audio/mpeg": 16 * _MB,
    "audio/mp4": 16 * _MB,
    "audio/ogg": 16 * _MB,
    "text/plain": 100 * _MB,
    "application/pdf": 100 * _MB,
    "application/msword": 100 * _MB,
    "application/vnd.ms-excel": 100 * _MB,
    "application/vnd.ms-powerpoint": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": 100 * _MB,
    "image/webp": 500 * 1024,
}
#: Where Gupshup documents the read receipt (`message-event`); the path is still to be
#: confirmed against the live API (NOTES.md).
READ_EVENT_PATH = "/partner/app/{app_id}/v1/event"
_CHUNK = 64 * 1024

MediaSource = str | os.PathLike[str] | bytes


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
        self.base_url = base_url.rstrip("/")
        self._email = email
        self._password = password
        self._partner_token = partner_token
        self._partner_expires = float("inf") if partner_token is not None else 0.0
        self._app_tokens: dict[str, tuple[str, float]] = {}
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

    async def partner_token(self, *, refresh_from: str | None = None) -> str:
        """The partner token: logged in once per 24 h, or again when `refresh_from` was refused."""
        async with self._lock:
            return await self._partner_token_locked(refresh_from)

    async def app_token(self, app_id: str, *, refresh_from: str | None = None) -> str:
        """The app token of `app_id`, cached until `expiresOn`; fetched again once it was refused.

        Concurrent callers refused with the same token share one fetch.
        """
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

    async def _partner_token_locked(self, refresh_from: str | None) -> str:
        token = self._partner_token
        if token is not None and self._clock() < self._partner_expires and token != refresh_from:
            return token
        if not self._email or not self._password:
            raise ValueError(
                "the partner token was refused and there is no email/password to log in again"
            )
        await self._pace_token_call()  # login shares the 10-a-minute budget
        response = await self._http.post(
            f"{self.base_url}/partner/account/login",
            data={"email": self._email, "password": self._password},
        )
        token = _token_from(response, "login", lambda data: data.get("token"))
        self._partner_token = token
        self._partner_expires = self._clock() + PARTNER_TOKEN_TTL - EXPIRY_MARGIN
        return token

    async def _fetch_app_token(self, app_id: str) -> tuple[str, float]:
        partner = await self._partner_token_locked(None)
        response = await self._get_app_token(app_id, partner)
        if response.status_code == 401 and self._email:
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

    async def _get_app_token(self, app_id: str, partner: str) -> httpx.Response:
        await self._pace_token_call()
        return await self._http.get(
            f"{self.base_url}/partner/app/{app_id}/token", headers={"Authorization": partner}
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

    async def get_token(self, *, refresh_from: str | None = None) -> str:
        return await self._partner.app_token(self._app_id, refresh_from=refresh_from)


def _token_from(response: httpx.Response, what: str, pick: Callable[[dict[str, Any]], Any]) -> str:
    """The token in a token answer; an error answer raises its `APIError` (no token in it)."""
    if not 200 <= response.status_code < 300:
        raise error_from_response(response.status_code, response.text)
    try:
        data = json.loads(response.content)
        token = pick(data) if isinstance(data, dict) else None
    except ValueError:
        token = None
    if not isinstance(token, str) or not token or any(c.isspace() for c in token):
        # The body is left out on purpose: it may hold a token.
        raise UnexpectedResponseError(
            f"{what} answer without a usable token", status_code=response.status_code
        )
    return token


def _expiry(expires_on: Any) -> float:
    """`expiresOn` as epoch seconds: 0 or absent means no stated expiry; ms are recognised."""
    if isinstance(expires_on, bool) or not isinstance(expires_on, int | float) or expires_on <= 0:
        return float("inf")
    return expires_on / 1000.0 if expires_on > 1e11 else float(expires_on)


def check_media(mime_type: str, size: int | None) -> None:
    """Refuse a MIME type Meta does not take, or a size past its limit for that kind."""
    limit = MEDIA_LIMITS.get(mime_type)
    if limit is not None:
        limit = min(limit, MEDIA_MAX_BYTES)
    if limit is None:
        raise ValueError(
            f"mime_type {mime_type!r} is not one Meta accepts: {', '.join(sorted(MEDIA_LIMITS))}"
        )
    if size is not None and size > limit:
        raise ValueError(
            f"media of {size} bytes is past Meta's limit of {limit} bytes for {mime_type}"
        )
    if size == 0:
        raise ValueError("media is empty (0 bytes)")


async def upload_media(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    source: MediaSource,
    mime_type: str,
    *,
    timeout: float,
) -> str:
    """Upload `source` (a path, bytes, or an http(s) URL fetched first) and return its media id.

    Size and type are checked before any byte goes to Gupshup; a URL's body is counted while
    it streams into a temporary file and abandoned past the limit.
    """
    check_media(mime_type, None)
    if isinstance(source, bytes):
        check_media(mime_type, len(source))
        return await _post_media(http, url, headers, source, "media", mime_type, timeout)
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        with tempfile.TemporaryFile() as spool:
            await _download(http, source, spool, MEDIA_LIMITS[mime_type], timeout)
            name = source.rsplit("/", 1)[-1].split("?", 1)[0] or "media"
            return await _post_media(http, url, headers, spool, name, mime_type, timeout)
    path = os.fspath(source)
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise ValueError(f"source: cannot read {path!r}: {exc.strerror}") from None
    check_media(mime_type, size)
    handle = await asyncio.to_thread(open, path, "rb")
    try:
        name = os.path.basename(path)
        return await _post_media(http, url, headers, handle, name, mime_type, timeout)
    finally:
        handle.close()


async def _download(
    http: httpx.AsyncClient, source: str, spool: IO[bytes], limit: int, timeout: float
) -> None:
    async with http.stream("GET", source, timeout=timeout) as response:
        if not 200 <= response.status_code < 300:
            raise ValueError(f"source: fetching the media URL answered {response.status_code}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ValueError(f"source: the media URL declares {declared} bytes, past {limit}")
        received = 0
        async for chunk in response.aiter_bytes(_CHUNK):  # counted after any decoding
            received += len(chunk)
            if received > limit:
                raise ValueError(f"source: the media URL sent more than {limit} bytes")
            spool.write(chunk)
    if received == 0:
        raise ValueError("source: the media URL sent no bytes")
    spool.seek(0)


async def _post_media(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    content: bytes | IO[bytes],
    name: str,
    mime_type: str,
    timeout: float,
) -> str:
    boundary = secrets.token_hex(16)
    quoted = name.replace("\\", "_").replace('"', "%22").replace("\r", "").replace("\n", "")
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file_type"\r\n\r\n'
        f"{mime_type}\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        f"Content-Type: {mime_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    if isinstance(content, bytes):
        size = len(content)
    else:
        size = os.fstat(content.fileno()).st_size - content.tell()

    async def multipart() -> AsyncIterator[bytes]:
        yield head
        if isinstance(content, bytes):
            yield content
        else:
            while chunk := await asyncio.to_thread(content.read, _CHUNK):
                yield chunk
        yield tail

    response = await http.post(
        url,
        headers={
            **headers,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        },
        content=multipart(),
        timeout=timeout,
    )
    if not 200 <= response.status_code < 300:
        raise error_from_response(response.status_code, response.text)
    try:
        media_id = json.loads(response.content).get("mediaId")
    except (ValueError, AttributeError):
        media_id = None
    if not isinstance(media_id, str) or not media_id:
        raise UnexpectedResponseError(
            "media upload answer without a mediaId",
            status_code=response.status_code,
            body=response.text[:500],
        )
    return media_id


def read_receipt(message_id: str, *, typing: bool) -> dict[str, Any]:
    """Meta's read receipt (and typing indicator) inside Gupshup's `message-event` envelope."""
    if not isinstance(message_id, str) or not message_id.strip():
        raise ValueError("message_id must be the non-empty id of the message to mark read")
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
    http: httpx.AsyncClient, url: str, headers: dict[str, str], message_id: str, *, typing: bool
) -> None:
    """Post a read receipt; raises the answer's `APIError` when it is refused."""
    body = json.dumps(read_receipt(message_id, typing=typing)).encode()
    response = await http.post(
        url, headers={**headers, "Content-Type": "application/json"}, content=body
    )
    if not 200 <= response.status_code < 300:
        raise error_from_response(response.status_code, response.text)
