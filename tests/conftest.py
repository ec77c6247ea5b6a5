from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

import gupshup_async as g
from gupshup_async.mock import MockGupshupServer

APP_ID = "app-123"
TOKEN = "sk_test_5ecret7oken"
BASE_URL = "https://partner.example"
SEND_URL = f"{BASE_URL}/partner/app/{APP_ID}/v3/message"

SUCCESS = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "919876543210", "wa_id": "919876543210"}],
    "messages": [{"id": "gs-1"}],
}


@pytest.fixture
def router() -> respx.Router:
    """A respx router for the wire; it is injected through httpx.MockTransport because
    respx's default mocker patches httpcore, which the aiohttp transport bypasses."""
    return respx.Router(assert_all_called=False, base_url=BASE_URL)


@pytest.fixture
async def client(router: respx.Router) -> AsyncIterator[g.AsyncGupshupClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    async with (
        http,
        g.AsyncGupshupClient(
            APP_ID,
            TOKEN,
            base_url=BASE_URL,
            http_client=http,
            retry_policy=g.RetryPolicy(sleep=_no_sleep, random=lambda: 1.0),
        ) as sdk,
    ):
        yield sdk


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def mock_server() -> AsyncIterator[MockGupshupServer]:
    async with MockGupshupServer() as server:
        yield server


@pytest.fixture
async def loopback_client(
    mock_server: MockGupshupServer,
) -> AsyncIterator[g.AsyncGupshupClient]:
    async with g.AsyncGupshupClient(
        mock_server.app_id, mock_server.token, base_url=mock_server.base_url
    ) as sdk:
        yield sdk
