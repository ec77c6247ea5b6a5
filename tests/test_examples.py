"""The examples run as a user would run them, against the mock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gupshup_async.mock import MockGupshupServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_send_each_type_against_the_mock() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "send_each_type.py")],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "The mock accepted 22 messages." in done.stdout


def test_bulk_campaign_example_sends_each_recipient_at_most_once() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "bulk_campaign.py"), "400"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "400 recipients in" in done.stdout
    assert "most for one recipient: 1" in done.stdout


async def test_starlette_app_awaits_a_send_with_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(EXAMPLES.parent))
    try:
        from examples.starlette_app import app
    finally:
        sys.path.remove(str(EXAMPLES.parent))
    async with MockGupshupServer() as mock:
        monkeypatch.setenv("GUPSHUP_BASE_URL", mock.base_url)
        monkeypatch.setenv("GUPSHUP_APP_ID", mock.app_id)
        monkeypatch.setenv("GUPSHUP_APP_TOKEN", mock.token)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://app") as web,
        ):
            ok = await web.post("/notify", json={"to": "+91 98765 43210", "text": "Shipped"})
            bad = await web.post("/notify", json={"to": "12", "text": "Shipped"})
        assert ok.status_code == 200
        assert ok.json()["message_id"] == mock.recorder.messages[0].id
        assert bad.status_code == 422
        assert "7-15 digits" in bad.json()["error"]
        assert mock.recorder.total_attempts == 1
