"""The mock Gupshup API as a bare ASGI application (no framework: it must outrun the client).

Routes: `POST /partner/app/{app_id}/v3/message`, `GET /_mock/stats`, `GET /_mock/arrivals`
(server-side arrival times, for rate checks from another process), `POST /_mock/reset`, and
the partner endpoints (login, app token, media, read events: `_partner_routes`).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._delivery import WebhookDispatcher
from ._faults import FaultPlan
from ._partner_routes import PartnerRoutes
from ._recorder import AcceptedMessage, Recorder
from ._validation import check_payload

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_PREFIX = "/partner/app/"
_SUFFIX = "/v3/message"


class ConnectionDroppedError(Exception):
    """Raised in-process (no socket to close) where the mock would drop the connection.

    It subclasses nothing of httpx on purpose; the in-process transport wraps it, see
    `mock_transport`.
    """


class TokenBucket:
    """`rate` sends per second with bursts of up to `burst`; `clock` is injectable."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()

    def take(self) -> bool:
        """Take one token if there is one."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class MockGupshupApp:
    """An ASGI app that behaves like Gupshup's v3 send endpoint, with throttling and faults.

    `rate` (sends per second, None for unlimited) and `burst` set the throttle;
    `throttle_shape` is "gupshup" or "meta" (code 130429) for its 429 bodies. With
    `bucket_per_app` (and `app_id=None`: any app id is served) each app id gets a bucket of its
    own, as Gupshup throttles each app.
    """

    def __init__(
        self,
        *,
        token: str = "mock-token",
        app_id: str | None = None,
        rate: float | None = None,
        burst: float | None = None,
        throttle_shape: str = "gupshup",
        faults: FaultPlan | None = None,
        recorder: Recorder | None = None,
        bucket_per_app: bool = False,
        delivery: WebhookDispatcher | None = None,
    ) -> None:
        self.token = token
        self.delivery = delivery  # status webhooks for what is accepted
        self.app_id = app_id
        self.faults = faults or FaultPlan()
        self.recorder = recorder or Recorder()
        self.throttle_shape = throttle_shape
        self.bucket = (
            TokenBucket(rate, burst if burst is not None else max(1.0, rate / 10))
            if rate is not None
            else None
        )
        self.app_buckets: dict[str, TokenBucket] | None = {} if bucket_per_app else None
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self.partner = PartnerRoutes(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "POST" and path.startswith(_PREFIX) and path.endswith(_SUFFIX):
            body = await _read_body(receive)
            await self._message(scope, body, send, path[len(_PREFIX) : -len(_SUFFIX)])
        elif path == "/_mock/stats" and method == "GET":
            per_recipient = b"summary" not in scope.get("query_string", b"")
            await _respond(send, 200, self.recorder.stats(per_recipient=per_recipient))
        elif path == "/_mock/arrivals" and method == "GET":
            await _respond(send, 200, {"arrivals": self.recorder.arrival_times()})
        elif path == "/_mock/reset" and method == "POST":
            self.recorder.reset()
            await _respond(send, 200, {"status": "success"})
        elif self.partner.handles(method, path):
            await self.partner.handle(scope, await _read_body(receive), send, _respond, _header)
        else:
            await _respond(send, 404, {"status": "error", "message": "Not Found"})

    async def _message(self, scope: Scope, raw: bytes, send: Send, app_id: str) -> None:
        if _header(scope, b"authorization") != self.token.encode():
            await _respond(send, 401, {"status": "error", "message": "Authentication Failed"})
            return
        if self.app_id is not None and app_id != self.app_id:
            await _respond(send, 400, {"status": "error", "message": "Invalid App Details"})
            return
        try:
            payload = json.loads(raw, parse_constant=_no_bare_constant)
        except ValueError:
            await _respond(send, 400, {"status": "error", "message": "Invalid JSON body"})
            return
        problem = check_payload(payload)
        if problem is not None:
            await _respond(send, 400, {"status": "error", "message": problem})
            return
        to: str = payload["to"]
        recorder = self.recorder
        attempt = recorder.attempt(to)
        recorder.enter()
        try:
            await self._answer(send, payload, to, attempt, self._bucket(app_id))
        finally:
            recorder.leave()

    def _bucket(self, app_id: str) -> TokenBucket | None:
        if self.app_buckets is None or self.bucket is None:
            return self.bucket
        bucket = self.app_buckets.get(app_id)
        if bucket is None:
            bucket = TokenBucket(self.bucket.rate, self.bucket.burst)
            self.app_buckets[app_id] = bucket
        return bucket

    async def _answer(
        self, send: Send, payload: dict[str, Any], to: str, attempt: int, bucket: TokenBucket | None
    ) -> None:
        faults = self.faults
        delay = faults.delay_for(to, attempt)
        if delay > 0:
            await asyncio.sleep(delay)
        if bucket is not None and not bucket.take():
            await self._throttled(send, meta=self.throttle_shape == "meta")
            return
        fault = faults.fault_for(to, attempt)
        if fault == "ok":
            await _respond(send, 200, self._accept(payload, to))
            return
        if fault in ("429", "429_meta", "429_after"):
            await self._throttled(
                send, meta=fault == "429_meta", always_retry_after=fault == "429_after"
            )
        elif fault == "400":
            await _respond(send, 400, {"status": "error", "message": "Invalid Destination"})
        elif fault in ("500", "502", "503", "504"):
            message = {"500": "Internal Server Error", "502": "Bad Gateway"}.get(
                fault, "Service Unavailable" if fault == "503" else "Gateway Timeout"
            )
            await _respond(send, int(fault), {"status": "error", "message": message})
        elif fault == "html_502":
            html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            await _send(send, 502, html, [(b"content-type", b"text/html")])
        elif fault == "drop_before":
            await _drop(send)
        elif fault == "drop_after":
            self._accept(payload, to)
            await _drop(send)
        elif fault == "slow":
            await asyncio.sleep(faults.slow_seconds)
            await _respond(send, 200, self._accept(payload, to))
        elif fault == "empty":
            self._accept(payload, to)
            await _send(send, 200, b"", _JSON)
        elif fault == "html_200":
            self._accept(payload, to)
            page = b"<html><body>Message queued</body></html>"
            await _send(send, 200, page, [(b"content-type", b"text/html")])
        elif fault == "truncated_json":
            encoded = json.dumps(self._accept(payload, to)).encode()
            await _send(send, 200, encoded[: len(encoded) // 2], _JSON)
        elif fault == "no_message_id":
            answer = self._accept(payload, to)
            answer["messages"] = []
            await _respond(send, 200, answer)

    def _accept(self, payload: dict[str, Any], to: str) -> dict[str, Any]:
        message_id = f"gs-{self._id_prefix}-{next(self._ids):09d}"
        self.recorder.accept(AcceptedMessage(message_id, to, payload["type"], time.monotonic()))
        if self.delivery is not None:
            self.delivery.accepted(message_id, to, payload)
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": message_id}],
        }

    async def _throttled(self, send: Send, *, meta: bool, always_retry_after: bool = False) -> None:
        headers = list(_JSON)
        retry_after = self.faults.retry_after
        if always_retry_after and retry_after is None:
            retry_after = 1.0
        if retry_after == "date":
            when = email.utils.formatdate(time.time() + 1.0, usegmt=True)
            headers.append((b"retry-after", when.encode()))
        elif isinstance(retry_after, int | float):
            headers.append((b"retry-after", f"{retry_after:g}".encode()))
        body: dict[str, Any]
        if meta:
            body = {
                "error": {
                    "message": "(#130429) Rate limit hit",
                    "type": "OAuthException",
                    "code": 130429,
                    "error_data": {"details": "Message throughput has been reached."},
                    "fbtrace_id": "mock",
                }
            }
        else:
            body = {"status": "error", "message": "Too Many Requests"}
        await _send(send, 429, json.dumps(body).encode(), headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


def _no_bare_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: the API refuses a body holding them."""
    raise ValueError(f"{name} is not JSON")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _respond(send: Send, status: int, data: dict[str, Any]) -> None:
    await _send(send, status, json.dumps(data).encode(), _JSON)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _drop(send: Send) -> None:
    """Close the connection with no answer: abort uvicorn's socket, or raise in-process."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionDroppedError("mock dropped the connection")
    transport.abort()
    await asyncio.sleep(0)  # let uvicorn see the disconnect, so it does not answer 500
