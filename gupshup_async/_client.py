"""AsyncGupshupClient: one shared `httpx.AsyncClient`, `send()`, retries, `aclose()`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from . import _partner
from ._errors import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    GupshupError,
    InvalidCredentialsError,
    UnexpectedResponseError,
    _InvalidProviderTokenError,
    error_from_response,
    json_object,
)
from ._message_base import MessageModel
from ._messages import Message
from ._recipients import mask_recipient, normalize_recipient
from ._retry import DEFAULT_MAX_RETRIES, RetryPolicy, parse_retry_after
from ._settings import Secret, check_base_url, check_reply_to, check_timeout, checked_token
from ._settings import check_app_id as check_app_id  # the CLI checks credentials from here
from ._settings import check_token as check_token
from ._transport import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    aiohttp_session,
    bounded,
    create_http_client,
    create_transport,
    deadline,
    decode_text,
    read_aiohttp_body,
    read_body,
)
from ._version import __version__

logger = logging.getLogger("gupshup_async")
_T = TypeVar("_T")

DEFAULT_BASE_URL = "https://partner.gupshup.io"
DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"gupshup-async/{__version__}"

#: Meta's limit on `biz_opaque_callback_data`, echoed back in the message's status webhooks.
MAX_CALLBACK_DATA = 512


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the API answered for one accepted message.

    `message_id` is Gupshup's id (`gs_id` in webhooks); `raw` is the whole JSON answer, and
    `raw_json` its text as received when that is plain UTF-8 JSON ("" otherwise): a journal
    keeps it as it came instead of encoding `raw` again.
    """

    message_id: str
    wa_id: str | None
    input: str | None
    raw: dict[str, Any]
    raw_json: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One HTTP attempt, for logging and metrics hooks; carries no token and a masked number."""

    attempt: int
    recipient: str
    status_code: int | None
    error: GupshupError | None
    retry_in: float | None


class _MaskedHeaders(dict[str, str]):
    """The request headers for aiohttp; their repr hides the token (they sit on the client)."""

    def __repr__(self) -> str:
        shown = {k: "[secure]" if k.lower() == "authorization" else v for k, v in self.items()}
        return repr(shown)


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
        check_reply_to(reply_to)
        context = ',"context":{"message_id":' + json_string(reply_to) + "}"
    if biz_opaque_callback_data is not None:
        check_callback_data(biz_opaque_callback_data)
        context += ',"biz_opaque_callback_data":' + json_string(biz_opaque_callback_data)
    return (
        '{"messaging_product":"whatsapp","recipient_type":"individual","to":"'
        + digits
        + '",'
        + fragment
        + context
        + "}"
    ).encode()


def json_string(value: str) -> str:
    """`value` as a JSON string literal, as `json.dumps(value, ensure_ascii=False)` writes it.

    Printable ASCII without a quote or backslash is its own JSON text, so the common id or
    callback key skips the encoder (a bulk run encodes one per message).
    """
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return '"' + value + '"'
    return json.dumps(value, ensure_ascii=False)


class AsyncGupshupClient:
    """Sends v3 session messages for one app over one shared, pooled `httpx.AsyncClient`.

    Use it as an async context manager or call `aclose()`. A caller-supplied `http_client` is
    used as it is and never closed here. The token goes into one header and nowhere else.
    `timeout` (seconds) is the deadline of each whole attempt: connect, write, headers and
    body. An answer body larger than `max_response_bytes` (after decompression) is cut and its
    connection dropped. `base_url` must be https, or plain http to a loopback host; pass
    `allow_insecure_http=True` to send the token unencrypted to another host.
    """

    def __init__(
        self,
        app_id: str,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
        max_retries: int | None = None,
        retry_ambiguous: bool = False,
        retry_policy: RetryPolicy | None = None,
        on_attempt: Callable[[AttemptEvent], None] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_insecure_http: bool = False,
        token_provider: _partner.TokenProvider | None = None,
    ) -> None:
        check_app_id(app_id)
        check_token(token)
        check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        timeout = check_timeout(timeout)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ValueError(f"max_connections must be an integer >= 1, got {max_connections!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int):
            raise ValueError(
                f"max_response_bytes must be an integer >= 1024, got {max_response_bytes!r}"
            )
        if max_response_bytes < 1024:
            raise ValueError(f"max_response_bytes must be >= 1024, got {max_response_bytes}")
        if max_retries is not None and retry_policy is not None:
            raise TypeError(
                "pass max_retries or retry_policy, not both: "
                "use RetryPolicy(max_retries=...) to set both"
            )
        self.app_id = app_id
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._url = httpx.URL(f"{self.base_url}/partner/app/{app_id}/v3/message")
        headers = {
            "Authorization": token,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "gzip, deflate",  # what read_body can inflate under its cap
        }
        self._token = Secret(token)
        self._headers = httpx.Headers(headers)
        self._owns_http = http_client is None
        self._closed = False
        # With our own client there are no hooks, auth, cookies or redirects to honour, so a
        # send goes from the encoded body straight onto the aiohttp pool, building no httpx
        # Request/Response/Headers: those objects were most of the gap to a hand-written
        # aiohttp loop (measured, see README "Performance"). The httpx.AsyncClient still owns
        # the pool: it creates and closes it, and says whether it is closed.
        self._pool: AiohttpTransport | None = None
        if http_client is None:
            self._pool = create_transport(max_connections=max_connections)
            http_client = create_http_client(timeout=timeout, transport=self._pool)
        self._http = http_client
        self._url_text = str(self._url)
        self._wire_headers = _MaskedHeaders(headers)
        # aiohttp's own timers cover only getting a connection (a timeout there proves the
        # request never left); reading is bounded by the whole-attempt deadline alone, since a
        # per-read timer would be a second timer per message that can never fire first.
        self._wire_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=None
        )
        # The owned pool (aiohttp) belongs to the loop that first used it.
        self._loop: asyncio.AbstractEventLoop | None = None
        policy = retry_policy or RetryPolicy(
            max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries
        )
        self.retry_policy = replace(
            policy, retry_ambiguous=retry_ambiguous or policy.retry_ambiguous
        )
        self.on_attempt = on_attempt
        # After a 401 (which proves nothing was sent) the provider is asked once for a newer
        # token and that one request is made again: a rotated or expired token heals itself.
        self._token_provider = token_provider

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
        """Close the connection pool, unless it was passed in by the caller; no call works after."""
        self._closed = True
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
        return await self._send_encoded(digits, body, max_retries=max_retries)

    async def _send_encoded(
        self, digits: str, body: bytes, *, max_retries: int | None = None
    ) -> SendResult:
        """Send a body built by `encode_body` for the already normalised `digits`, with retries."""
        policy = self.retry_policy
        retries = 0
        while True:
            try:
                result = await self._post_once(body)
            except GupshupError as error:
                decision = policy.decide(error, retries, max_retries)
                self._report_attempt(
                    retries + 1, digits, error, decision.wait if decision.retry else None
                )
                if not decision.retry:
                    raise
                await policy.sleep(decision.wait)
                retries += 1
                continue
            self._report_attempt(retries + 1, digits, None, None)
            return result

    async def _post_once(self, body: bytes) -> SendResult:
        """One HTTP attempt, no retry: the building block of `send` and of the bulk sender.

        With a `token_provider`, a 401 fetches a fresh token and posts once more.
        """
        if self._token_provider is None:  # the hot path: no wrapper coroutine, no closure
            self._check_usable()
            return await self._post_attempt(body)
        return await self._with_fresh_token(lambda: self._post_attempt(body))

    async def _post_attempt(self, body: bytes) -> SendResult:
        """One HTTP attempt, no retry, under the whole-attempt deadline and the body cap."""
        async with bounded(self.timeout, self._timed_out):
            status, headers, content, problem = await self._exchange(body)
        if 200 <= status < 300 and problem is None:
            return _parse_success(status, content)
        text = decode_text(content, headers.get("content-type"))
        if 200 <= status < 300:
            raise UnexpectedResponseError(
                f"success answer unreadable ({problem}): the message may have been accepted",
                status_code=status,
                body=text,
                ambiguous=True,
            )
        raise error_from_response(status, text, retry_after=parse_retry_after(headers))

    async def _exchange(self, body: bytes) -> tuple[int, Mapping[str, str], bytes, str | None]:
        """POST `body`; return the status, headers, body (capped) and what cut the body."""
        if self._pool is not None:
            session = aiohttp_session(self._pool)
            answer = await session.request(
                "POST",
                self._url_text,
                data=body,
                headers=self._wire_headers,
                timeout=self._wire_timeout,
                allow_redirects=False,
                auto_decompress=False,
            )
            whole = False
            try:
                content, problem = await read_aiohttp_body(answer, self.max_response_bytes)
                whole = problem is None
            finally:
                if whole:
                    answer.release()
                else:
                    answer.close()  # drop the connection: the rest of the body is not read
            return answer.status, answer.headers, content, problem
        request = self._http.build_request("POST", self._url, headers=self._headers, content=body)
        response = await self._http.send(request, stream=True)
        try:
            content, problem = await read_body(response, self.max_response_bytes)
        finally:
            await response.aclose()
        return response.status_code, response.headers, content, problem

    def _timed_out(self) -> APITimeoutError:
        return APITimeoutError(
            f"no complete answer within {self.timeout:g} s: the message may have been sent",
            ambiguous=True,
        )

    def _check_usable(self) -> None:
        if self._closed or self._http.is_closed:
            raise RuntimeError("this AsyncGupshupClient is closed; make a new one to send")
        if self._owns_http:
            loop = asyncio.get_running_loop()
            if self._loop is None:
                self._loop = loop
            elif loop is not self._loop:
                raise RuntimeError(
                    "this AsyncGupshupClient's connection pool belongs to the event loop that "
                    "first used it; nothing was sent: make one client per event loop"
                )

    def _report_attempt(
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

    async def upload_media(
        self,
        source: _partner.MediaSource,
        mime_type: str,
        *,
        timeout: float = _partner.UPLOAD_TIMEOUT,
    ) -> str:
        """Upload a path, bytes or an http(s) URL's body; return the media id for `id=`.

        Type and size are checked against Meta's limits per kind (100 MB at most) before any
        byte is sent (`ValueError`). `timeout` bounds the whole upload, in seconds.
        """
        url = f"{self.base_url}/partner/app/{self.app_id}/media"
        return await self._with_fresh_token(
            lambda: _partner.upload_media(
                self._http, url, self._partner_headers(), source, mime_type, timeout=timeout
            )
        )

    async def mark_read(self, message_id: str, typing: bool = False) -> None:
        """Mark a received message read; `typing=True` also shows the typing indicator."""
        url = self.base_url + _partner.READ_EVENT_PATH.format(app_id=self.app_id)
        await self._with_fresh_token(
            lambda: _partner.mark_read(
                self._http,
                url,
                self._partner_headers(),
                message_id,
                typing=typing,
                timeout=self.timeout,
            )
        )

    def _partner_headers(self) -> dict[str, str]:
        return {"Authorization": self._token, "User-Agent": USER_AGENT}

    async def _with_fresh_token(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """`call()`; after a 401, once more with the provider's newer token (if it has one).

        Every call to the API passes here, so here it is refused on a closed client or a
        second event loop, before any byte.
        """
        self._check_usable()
        if self._token_provider is None:
            return await call()
        refused = self._token
        try:
            return await call()
        except AuthenticationError as error:
            fresh = await self._fresh_token(refused, error)
            if fresh == refused:
                raise
        if self._token == refused:
            self._use_token(fresh)
        return await call()

    async def _fresh_token(self, refused: Secret, error: AuthenticationError) -> Secret:
        """The provider's token newer than `refused`, within the client's timeout.

        The 401 proved nothing was sent, so a provider that raises, hangs or gives a token
        that cannot be right leaves as a not-ambiguous `AuthenticationError` (chained to the
        provider's error): it fails this call, or one recipient of a bulk run, only.
        """
        assert self._token_provider is not None
        try:
            async with deadline(self.timeout):
                fresh = checked_token(await self._token_provider.get_token(refresh_from=refused))
        except Exception as exc:
            cls, why = AuthenticationError, f"failed ({type(exc).__name__})"
            if isinstance(exc, InvalidCredentialsError):
                cls, why = _InvalidProviderTokenError, f"gave one that cannot be right ({exc})"
            elif isinstance(exc, TimeoutError):
                why = f"gave no token within {self.timeout:g} s"
            raise cls(
                f"the token was refused and the token provider {why}: nothing was sent",
                status_code=error.status_code,
                code=error.code,
                body=error.body,
            ) from exc
        return fresh

    def _use_token(self, token: Secret) -> None:
        """Put `token` in both header sets: the httpx path's and the owned pool's."""
        self._token = token
        headers = self._headers.copy()
        headers["Authorization"] = token
        self._headers = headers
        self._wire_headers = _MaskedHeaders({**self._wire_headers, "Authorization": token})


def _parse_success(status: int, content: bytes) -> SendResult:
    raw = json_object(content)
    try:
        message_id = raw["messages"][0]["id"]  # type: ignore[index]
        if not isinstance(message_id, str) or not message_id:
            raise TypeError
    except (KeyError, IndexError, TypeError):
        raise UnexpectedResponseError(
            "success answer without a message id: the message may have been accepted",
            status_code=status,
            body=content.decode("utf-8", errors="replace"),
            ambiguous=True,
        ) from None
    assert raw is not None
    contacts = raw.get("contacts")
    contact = contacts[0] if isinstance(contacts, list) and contacts else {}
    if not isinstance(contact, dict):
        contact = {}
    return SendResult(
        message_id=message_id,
        wa_id=_str_or_none(contact.get("wa_id")),
        input=_str_or_none(contact.get("input")),
        raw=raw,
        raw_json=_as_received(content),
    )


def _as_received(content: bytes) -> str:
    """The answer's own text when `json.loads` read it as plain UTF-8 (no BOM, not UTF-16 or
    32, which show NULs in the first bytes), else "": the same text that was parsed."""
    if not content.startswith(b"{") or b"\x00" in content[:4]:
        return ""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:  # lone surrogates json reads but SQLite could not store
        return ""


def check_callback_data(value: str) -> None:
    """Refuse a `biz_opaque_callback_data` that is not a string of 1-512 characters."""
    if not isinstance(value, str):
        raise ValueError(f"biz_opaque_callback_data must be a string, not {type(value).__name__}")
    if not 0 < len(value) <= MAX_CALLBACK_DATA:
        raise ValueError(
            f"biz_opaque_callback_data must be 1-{MAX_CALLBACK_DATA} characters, got {len(value)}"
        )


def _str_or_none(value: object) -> str | None:
    """A field typed `str | None` takes only a string; anything else stays in `raw` only."""
    return value if isinstance(value, str) else None
