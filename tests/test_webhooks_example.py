"""examples/webhook_app.py, served for real: an inbound text gets a reply that quotes it."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gupshup_async.mock import MockGupshupApp
from gupshup_async.mock._server import uvicorn_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SECRET = "example-5ecret"


@contextmanager
def serve(app: Any, lifespan: str = "off") -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, lifespan=lifespan))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "server died"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Capture:
    """The mock send endpoint, keeping every body it was sent (to check the exact JSON)."""

    def __init__(self) -> None:
        self.mock = MockGupshupApp(token="mock-token", app_id="mock-app")
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.mock(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        self.bodies.append(json.loads(body))
        replayed = False

        async def again() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.mock(scope, again, send)


def inbound(text: str) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919876543210"}],
        "messages": [{"from": "919876543210", "id": "wamid.IN-42", "timestamp": "1710941393",
                      "type": "text", "text": {"body": text}}],
    }  # fmt: skip
    return {"gs_app_id": "mock-app", "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]}  # fmt: skip


def test_an_inbound_text_gets_a_reply_quoting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    capture = Capture()
    with serve(capture) as gupshup:
        monkeypatch.setenv("GUPSHUP_BASE_URL", gupshup)
        monkeypatch.setenv("GUPSHUP_APP_ID", "mock-app")
        monkeypatch.setenv("GUPSHUP_APP_TOKEN", "mock-token")
        monkeypatch.setenv("GUPSHUP_WEBHOOK_SECRET", SECRET)
        monkeypatch.delenv("GUPSHUP_JOURNAL", raising=False)
        sys.path.insert(0, str(EXAMPLES.parent))
        sys.modules.pop("examples.webhook_app", None)
        try:
            from examples.webhook_app import app
        finally:
            sys.path.remove(str(EXAMPLES.parent))
        with serve(app, lifespan="on") as site:
            url = site + "/webhooks/gupshup"
            refused = httpx.post(url, json=inbound("hello"), headers={"X-Webhook-Secret": "wrong"})
            first = httpx.post(url, json=inbound("hello"), headers={"X-Webhook-Secret": SECRET})
            again = httpx.post(url, json=inbound("hello"), headers={"X-Webhook-Secret": SECRET})
            deadline = time.monotonic() + 20
            while not capture.bodies and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # a second reply, if the repeated delivery made one, would be here
    assert [refused.status_code, first.status_code, again.status_code] == [401, 200, 200]
    assert capture.bodies == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "919876543210",
            "type": "text",
            "text": {"body": "Thanks Asha, you said: hello"},
            "context": {"message_id": "wamid.IN-42"},
        }
    ]
