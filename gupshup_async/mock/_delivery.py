"""The mock's other half: v3 status webhooks for what it accepted, and inbound messages.

For every accepted message (also one accepted behind a dropped connection or a malformed
answer) the dispatcher posts, one event per POST as Gupshup does, `enqueued -> sent ->
delivered -> read` after the plan's delays, or `enqueued -> failed` with a seeded code. The
fate of a recipient depends only on the seed and the number (`DeliveryPlan.fate`), so a test
can compute what the journal must end up with. It retries while the receiver answers non-2xx
or is down, sends some events twice and some messages' events in reverse order, on request.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

#: Titles Meta gives these codes in status webhooks.
FAILURE_TITLES = {
    131047: "Re-engagement message",
    131026: "Message undeliverable",
    131049: "Meta chose not to deliver.",
    131051: "Unsupported message type",
    131053: "Media upload error",
}
_FUNNEL = ("enqueued", "sent", "delivered", "read")


@dataclass(frozen=True)
class DeliveryPlan:
    """What happens to each accepted message after the POST, seeded.

    `failures` maps a Meta code to the share of recipients whose message fails with it;
    of the rest, `read_share` are read, the others stay delivered. `delays` are seconds
    after acceptance for enqueued, sent (or failed), delivered and read. `duplicate_share`
    of events are posted twice; `out_of_order_share` of messages have their events posted
    last-first. `flat_failures` uses the older `code`/`reason` form. `echo_callback_data`
    returns the send's `biz_opaque_callback_data` (Meta does; Gupshup: not documented).
    Failed posts are retried after `retry_initial` seconds, doubling up to `retry_max`,
    at most `max_attempts` times; at most `concurrency` POSTs are in flight.
    """

    seed: int = 0
    failures: Mapping[int, float] = field(default_factory=dict)
    read_share: float = 0.5
    delays: tuple[float, float, float, float] = (0.0, 0.01, 0.02, 0.04)
    duplicate_share: float = 0.0
    out_of_order_share: float = 0.0
    flat_failures: bool = False
    echo_callback_data: bool = True
    retry_initial: float = 0.05
    retry_max: float = 2.0
    max_attempts: int = 30
    concurrency: int = 32

    def __post_init__(self) -> None:
        if sum(self.failures.values()) > 1.0 or any(v < 0 for v in self.failures.values()):
            raise ValueError("failures: shares must be >= 0 and add up to at most 1")

    def fate(self, to: str) -> tuple[str, int | None]:
        """("read" | "delivered" | "failed", code): the furthest status `to` reaches."""
        rng = random.Random(f"{self.seed}:fate:{to}")
        draw = rng.random()
        for code, share in sorted(self.failures.items()):
            if draw < share:
                return "failed", code
            draw -= share
        return ("read" if rng.random() < self.read_share else "delivered"), None

    def expected_funnel(self, accepted: Iterable[str]) -> dict[str, Any]:
        """The funnel a journal must show once every event for `accepted` arrived."""
        counts = Counter(self.fate(to) for to in set(accepted))
        read = counts[("read", None)]
        delivered = read + counts[("delivered", None)]
        by_code = {str(code): n for (word, code), n in counts.items() if word == "failed"}
        return {
            "accepted": sum(counts.values()),
            "sent": delivered,
            "delivered": delivered,
            "read": read,
            "failed": sum(by_code.values()),
            "failed_by_code": dict(sorted(by_code.items())),
        }

    def statuses(self, to: str) -> list[str]:
        """The statuses posted for a message to `to`, in their natural order."""
        word, _ = self.fate(to)
        if word == "failed":
            return ["enqueued", "failed"]
        return list(_FUNNEL[: _FUNNEL.index(word) + 1])


class WebhookDispatcher:
    """Posts the plan's events to `url` from the mock's event loop; counts what it did.

    `headers` go on every POST (Gupshup's subscription `meta`). `posted` counts events the
    receiver acknowledged (2xx), `attempts` every POST, `gave_up` events dropped after
    `max_attempts`.
    """

    def __init__(
        self,
        plan: DeliveryPlan,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        app_id: str = "mock-app",
    ) -> None:
        self.plan = plan
        self.url = url
        self.headers = dict(headers or {})
        self.app_id = app_id
        self.posted = 0
        self.attempts = 0
        self.gave_up = 0
        self.acknowledged: Counter[str] = Counter()  # "gs_id:status" -> 2xx answers
        self.answers: Counter[str] = Counter()  # status code or exception name -> count
        self._http: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random(f"{plan.seed}:dispatch")
        self._inbound_ids = itertools.count(1)

    def accepted(self, message_id: str, to: str, payload: Mapping[str, Any]) -> None:
        """The mock accepted `payload` as `message_id`: schedule its status events."""
        callback = payload.get("biz_opaque_callback_data")
        if not self.plan.echo_callback_data:
            callback = None
        self._spawn(self._message_events(message_id, to, callback))

    def inbound(self, sender: str, text: str, *, name: str = "Mock User") -> str:
        """Post an inbound text from `sender` now; returns its wamid."""
        wamid = f"wamid.MOCKIN{next(self._inbound_ids):08d}"
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": "mock"},
            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
            "messages": [{"from": sender, "id": wamid, "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": text}}],
        }  # fmt: skip
        self._spawn(self._post(self._envelope(value), f"{wamid}:inbound"))
        return wamid

    async def idle(self) -> None:
        """Return once every scheduled event was acknowledged or given up on."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def pending(self) -> int:
        """Messages and inbound events still being delivered."""
        return len(self._tasks)

    async def aclose(self) -> None:
        """Stop delivering and close the HTTP client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _message_events(self, message_id: str, to: str, callback: str | None) -> None:
        plan, rng = self.plan, self._rng
        words = plan.statuses(to)
        started = time.monotonic()
        items = [self._status(message_id, to, word, callback) for word in words]
        delays = [plan.delays[min(_FUNNEL.index(w) if w != "failed" else 1, 3)] for w in words]
        if rng.random() < plan.out_of_order_share:
            items.reverse()
            delays = [delays[-1]] * len(items)
        for item, delay in zip(items, delays, strict=True):
            wait = started + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            body = self._envelope({"messaging_product": "whatsapp", "statuses": [item]})
            key = f"{message_id}:{item['status']}"
            await self._post(body, key)
            if rng.random() < plan.duplicate_share:
                await self._post(body, key)

    def _status(self, message_id: str, to: str, word: str, callback: str | None) -> dict[str, Any]:
        now = time.time()
        style = self._rng.randrange(4)  # seconds or milliseconds, number or string
        stamp: int | str = int(now) if style < 2 else int(now * 1000)
        if style % 2:
            stamp = str(stamp)
        item: dict[str, Any] = {
            "gs_id": message_id,
            "id": "wamid.MOCK" + hashlib.sha256(message_id.encode()).hexdigest()[:24].upper(),
            "recipient_id": to[:4] + "****" + to[-3:],  # masked, as in Gupshup's examples
            "status": word,
            "timestamp": stamp,
        }
        if callback is not None:
            item["biz_opaque_callback_data"] = callback
        if word == "sent":
            item["conversation"] = {"id": "mock-conversation", "origin": {"type": "service"}}
            item["pricing"] = {"billable": False, "pricing_model": "CBP", "category": "service"}
        if word == "failed":
            _, code = self.plan.fate(to)
            assert code is not None
            title = FAILURE_TITLES.get(code, "Message failed")
            if self.plan.flat_failures:
                item.update(code=code, reason=title)
            else:
                item["errors"] = [{"code": code, "title": title, "message": title,
                                   "error_data": {"details": title}}]  # fmt: skip
        return item

    def _envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "entry": [{"changes": [{"field": "messages", "value": value}], "id": "mock-waba"}],
            "gs_app_id": self.app_id,
            "object": "whatsapp_business_account",
        }

    async def _post(self, body: dict[str, Any], key: str) -> None:
        if self._http is None or self._slots is None:
            limits = httpx.Limits(max_connections=self.plan.concurrency)
            # aiohttp's pool: httpx's own collapses under this concurrency (a 5 000-recipient
            # demo's ~20 000 posts took over 120 s with it).
            self._http = httpx.AsyncClient(
                transport=AiohttpTransport(limits=limits, trust_env=False),
                timeout=httpx.Timeout(10.0, pool=None),
            )
            self._slots = asyncio.Semaphore(self.plan.concurrency)
        wait = self.plan.retry_initial
        for _ in range(self.plan.max_attempts):
            try:
                async with self._slots:
                    self.attempts += 1
                    answer = await self._http.post(self.url, json=body, headers=self.headers)
            except httpx.HTTPError as error:
                self.answers[type(error).__name__] += 1
            else:
                self.answers[str(answer.status_code)] += 1
                if 200 <= answer.status_code < 300:
                    self.posted += 1
                    self.acknowledged[key] += 1
                    return
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.plan.retry_max)
        self.gave_up += 1
