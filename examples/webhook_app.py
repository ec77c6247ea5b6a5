"""A web app that receives Gupshup's webhooks and answers each inbound text, quoting it.

    pip install 'gupshup-async[mock]' starlette uvicorn
    export GUPSHUP_APP_ID=... GUPSHUP_APP_TOKEN=... GUPSHUP_WEBHOOK_SECRET=...
    uvicorn examples.webhook_app:app --port 8000

Subscribe the app's callback URL `https://<your host>/webhooks/gupshup` (version 3, modes
MESSAGE,SENT,DELIVERED,READ,FAILED) with `meta` = `{"X-Webhook-Secret": "<the secret>"}`:
Gupshup then sends that header with every callback, and anything without it gets 401.

The receiver answers 200 as soon as the event is accepted; the reply is sent afterwards by
the handler, so a slow send never makes Gupshup time out and retry. Set GUPSHUP_JOURNAL to a
campaign journal to also reconcile delivery statuses into it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

import gupshup_async as g
from gupshup_async.webhooks import InboundMessage, WebhookEvent

logger = logging.getLogger("webhook_app")
clients: dict[str, g.AsyncGupshupClient] = {}


async def on_event(event: WebhookEvent) -> None:
    """Answer an inbound text by quoting it; statuses are only logged."""
    if isinstance(event, InboundMessage) and event.type == "text" and event.sender:
        reply = g.Text(body=f"Thanks {event.profile_name or 'there'}, you said: {event.text}")
        await clients["gupshup"].send(event.sender, reply, reply_to=event.wamid)
    elif isinstance(event, g.webhooks.StatusEvent):
        logger.info("message %s is %s", event.gs_id, event.status)


receiver = g.WebhookReceiver(
    handler=on_event,
    secret=os.environ.get("GUPSHUP_WEBHOOK_SECRET") or None,
    journal=os.environ.get("GUPSHUP_JOURNAL") or None,
)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with g.AsyncGupshupClient(
        os.environ.get("GUPSHUP_APP_ID", "mock-app"),
        os.environ.get("GUPSHUP_APP_TOKEN", "mock-token"),
        base_url=os.environ.get("GUPSHUP_BASE_URL", "https://partner.gupshup.io"),
    ) as client:
        clients["gupshup"] = client
        yield
        await receiver.aclose()  # replies still running finish before the client closes


# A Route, not a Mount: a Mount redirects the exact path with 307, which a webhook sender
# may not follow.
app = Starlette(routes=[Route("/webhooks/gupshup", receiver)], lifespan=lifespan)
