"""WebhookReceiver: a bare ASGI app that takes Gupshup's callbacks, stores them, says 200.

Per POST, top to bottom: the caller's address against the allowlist (403), the shared secret
header in constant time (401), the size limit (413, read no further), the body parsed (400 if it
is not a v3 callback), the events stored (with a journal: committed before the answer, 503 if
that fails), the new ones handed on (queue or handler), 200. Gupshup retries an answer that is
not 2xx, or that does not come within 10 s, and recommends under 100 ms: the answer never waits
for the handler, only for the commit (grouped: every request that arrives while one commit
runs shares the next).

Authentication is Gupshup's documented way: the subscription's `meta` JSON becomes request
headers, so a secret travels as a header. Gupshup does not sign callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ..journal import Journal
from ..journal.delivery import DeliveryJournal
from .events import WebhookEvent, WebhookParseError, parse_events
from .reconcile import event_key, event_rows, reconcile

if TYPE_CHECKING:  # psycopg is the `postgres` extra: imported only for a Postgres journal
    from ..journal._pg_delivery import DeliveryDatabase

logger = logging.getLogger(__name__)

Scope: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send: TypeAlias = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Handler: TypeAlias = Callable[[WebhookEvent], Awaitable[None]]
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_SECRET_HEADER = "X-Webhook-Secret"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Without a journal, how many recent event keys are remembered to drop repeated deliveries.
DEFAULT_DEDUP_MEMORY = 100_000
#: How often (seconds) statuses that matched no recipient are tried again.
UNMATCHED_RETRY_SECONDS = 2.0
#: How a `journal` argument names a Postgres database rather than a file.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_JSON = [(b"content-type", b"application/json")]
_OK = b'{"status":"ok"}'


def _error(message: str) -> bytes:
    return json.dumps({"status": "error", "message": message}).encode()


class WebhookReceiver:
    """An ASGI app for Gupshup v3 callbacks; mount it in Starlette/FastAPI or serve it alone.

    `secret` is expected in header `secret_header` (compared in constant time); `allow_ips`
    are CIDRs; a peer in `trusted_proxies` is a proxy whose `X-Forwarded-For` names the
    caller. Bodies over `max_body_bytes` get 413. With `journal` (a path or a `Journal`,
    opened as a `DeliveryJournal` beside the campaign that may be sending; or a
    `postgresql://` URL, the database the workers send from, any number of receivers at
    once) events are committed before the 2xx and statuses are reconciled into it; new
    events (a repeated delivery is not new) go to `queue` (bounded by `queue_size`: when
    full the answer is 503 and Gupshup retries) and to `handler`, run after the answer (at
    most `max_handlers` at once, else 503). `path` (None: any) is the one path accepted.
    """

    def __init__(
        self,
        *,
        journal: Journal | str | Path | None = None,
        handler: Handler | None = None,
        queue_size: int | None = None,
        secret: str | None = None,
        secret_header: str = DEFAULT_SECRET_HEADER,
        allow_ips: Iterable[str] = (),
        trusted_proxies: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_handlers: int = 1000,
        path: str | None = None,
    ) -> None:
        if secret is not None and not secret:
            raise ValueError("secret must be a non-empty string (or None for no secret)")
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be >= 1, got {max_body_bytes}")
        if queue_size is not None and queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self._secret = secret.encode() if secret is not None else None
        self.secret_header = secret_header
        self._secret_header = secret_header.lower().encode("latin-1")
        self.allow_ips = _networks(allow_ips, "allow_ips")
        self.trusted_proxies = _networks(trusted_proxies, "trusted_proxies")
        self.max_body_bytes = max_body_bytes
        self.max_handlers = max_handlers
        self.path = path
        self.handler = handler
        self.queue: asyncio.Queue[WebhookEvent] | None = (
            asyncio.Queue(queue_size) if queue_size is not None else None
        )
        if isinstance(journal, Journal):
            journal = journal.path
        # Its own connection, not the sending process's handle: it runs beside a campaign.
        self.journal: DeliveryJournal | DeliveryDatabase | None = None
        if isinstance(journal, str) and journal.startswith(POSTGRES_SCHEMES):
            from ..journal._pg_delivery import DeliveryDatabase

            self.journal = DeliveryDatabase(journal)
        elif journal is not None:
            self.journal = DeliveryJournal(journal)
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._pending: list[tuple[list[WebhookEvent], asyncio.Future[list[bool]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._unmatched_at = 0.0
        #: Counters: requests answered 2xx, events new and repeated, requests refused.
        self.stats = {"accepted": 0, "events": 0, "duplicates": 0, "refused": 0}

    def __repr__(self) -> str:
        secret = "set" if self._secret is not None else "none"
        return f"WebhookReceiver(path={self.path!r}, secret={secret}, journal={self.journal!r})"

    async def aclose(self) -> None:
        """Finish pending commits and handlers, then close the journal connection."""
        if self._pending and isinstance(self.journal, DeliveryJournal):
            self._flush()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if isinstance(self.journal, DeliveryJournal):
            with contextlib.suppress(Exception):
                self.journal.apply_unmatched()
            self.journal.close()
        elif self.journal is not None:
            if self.journal.connected:  # (never wait here for a database that is down)
                with contextlib.suppress(Exception):
                    await (await self.journal.delivery()).apply_unmatched()
            await self.journal.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, body = await self._handle(scope, receive)
        if 200 <= status < 300:
            self.stats["accepted"] += 1
        else:
            self.stats["refused"] += 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        if self.path is not None and scope["path"] != self.path:
            return 404, _error("Not Found")
        if scope["method"] == "GET":
            return 200, _OK  # reachability checks, nothing else
        if scope["method"] != "POST":
            return 405, _error("Method Not Allowed")
        if self.allow_ips and not self._allowed(scope):
            return 403, _error("Forbidden")
        if self._secret is not None:
            given = _header(scope, self._secret_header)
            if given is None or not hmac.compare_digest(given, self._secret):
                return 401, _error("Unauthorized")
        body = await self._read_body(scope, receive)
        if body is None:
            return 413, _error("Payload Too Large")
        try:
            events = parse_events(body)
        except WebhookParseError as bad:
            return 400, _error(str(bad))
        if self._busy(len(events)):
            return 503, _error("Busy, retry later")
        try:
            fresh = await self._store(events)
        except Exception:
            logger.exception("webhook events could not be stored; answered 503 for a retry")
            return 503, _error("Not stored, retry later")
        new = [event for event, is_new in zip(events, fresh, strict=True) if is_new]
        self.stats["events"] += len(new)
        self.stats["duplicates"] += len(events) - len(new)
        self._hand_on(new)
        return 200, _OK

    # ------------------------------------------------------------ checks

    def _allowed(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not client:
            return False
        try:
            peer = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        if self.trusted_proxies and _inside(peer, self.trusted_proxies):
            forwarded = _header(scope, b"x-forwarded-for")
            hops = forwarded.decode("latin-1").split(",") if forwarded else []
            for hop in reversed(hops):  # the right-most hop not a trusted proxy is the caller
                try:
                    peer = ipaddress.ip_address(hop.strip())
                except ValueError:
                    return False
                if not _inside(peer, self.trusted_proxies):
                    break
        return _inside(peer, self.allow_ips)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The body, or None once it is over the limit (the rest is never read)."""
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _busy(self, count: int) -> bool:
        if self.queue is not None and self.queue.maxsize - self.queue.qsize() < count:
            return True
        return self.handler is not None and len(self._handlers) >= self.max_handlers

    # ------------------------------------------------------------ storing

    async def _store(self, events: list[WebhookEvent]) -> list[bool]:
        if self.journal is None:
            return [self._remember(event_key(event)) for event in events]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bool]] = loop.create_future()
        if isinstance(self.journal, DeliveryJournal):
            if not self._pending:
                loop.call_soon(self._flush)  # after every request ready in this loop turn
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_postgres(self.journal))
        self._pending.append((events, future))
        return await future

    def _remember(self, key: str) -> bool:
        if key in self._recent:
            return False
        self._recent[key] = None
        if len(self._recent) > DEFAULT_DEDUP_MEMORY:
            self._recent.popitem(last=False)
        return True

    def _flush(self) -> None:
        """Commit every waiting request's events in one transaction.

        In the event loop's thread on purpose: a commit of a batch takes about a millisecond,
        while a worker thread would wait for the GIL after every SQLite call (measured: 30x
        slower under load).
        """
        batch, self._pending = self._pending, []
        events = [event for events, _ in batch for event in events]
        try:
            fresh = self._commit(events)
        except Exception as exc:
            _answer(batch, exc)
            return
        _answer(batch, fresh)

    async def _flush_postgres(self, database: DeliveryDatabase) -> None:
        """Commit the waiting requests' events, one transaction at a time: what arrives while
        one commit is on the wire shares the next (any number of receivers may run at once:
        the database applies each event once)."""
        while self._pending:
            await asyncio.sleep(0)  # the rest of this loop turn joins the batch
            batch, self._pending = self._pending, []
            events = [event for events, _ in batch for event in events]
            try:
                delivery = await database.delivery()
                fresh = await delivery.store_events(event_rows(events))
            except Exception as exc:
                _answer(batch, exc)
                continue
            _answer(batch, fresh)
            now = time.monotonic()
            if now - self._unmatched_at >= UNMATCHED_RETRY_SECONDS:
                self._unmatched_at = now
                try:
                    await delivery.apply_unmatched()
                except Exception:  # tried again later; the events are stored
                    logger.exception("stored statuses could not be applied yet")

    def _commit(self, events: list[WebhookEvent]) -> list[bool]:
        assert isinstance(self.journal, DeliveryJournal)
        fresh = reconcile(self.journal, events)
        now = time.monotonic()
        if now - self._unmatched_at >= UNMATCHED_RETRY_SECONDS:
            self._unmatched_at = now
            if self.journal.unapplied_events():
                self.journal.apply_unmatched()
        return fresh

    def _hand_on(self, events: list[WebhookEvent]) -> None:
        for event in events:
            if self.queue is not None:
                self.queue.put_nowait(event)  # room was checked before storing
            if self.handler is not None:
                task = asyncio.ensure_future(self._run_handler(self.handler, event))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)

    @staticmethod
    async def _run_handler(handler: Handler, event: WebhookEvent) -> None:
        try:
            await handler(event)
        except Exception:
            logger.exception("webhook handler failed for a %s", type(event).__name__)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _answer(
    batch: list[tuple[list[WebhookEvent], asyncio.Future[list[bool]]]],
    fresh: list[bool] | Exception,
) -> None:
    """Give each waiting request its share of a commit's answer, or the commit's failure."""
    start = 0
    for group, future in batch:
        if not future.done():
            if isinstance(fresh, Exception):
                future.set_exception(fresh)
            else:
                future.set_result(fresh[start : start + len(group)])
        start += len(group)


def _networks(values: Iterable[str], name: str) -> tuple[Network, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not an IP address or CIDR") from None
    return tuple(networks)


def _inside(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Iterable[Network]
) -> bool:
    return any(address in network for network in networks)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
