"""Issue 12 section 3: with a token provider, a 401 (nothing was sent) refreshes the token
once and makes that one request again; without one, or twice refused, the 401 is raised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import respx

import gupshup_async as g
from gupshup_async.mock import MockGupshupServer

from .conftest import APP_ID, BASE_URL, SEND_URL, SUCCESS
from .reference_examples import TO

UNAUTHORIZED = {"status": "error", "message": "Authentication Failed"}


class Provider:
    """A token provider that hands out the given tokens in turn and counts its calls."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.refused: list[str | None] = []

    async def get_token(self, *, refresh_from: str | None = None) -> str:
        self.refused.append(refresh_from)
        return self.tokens.pop(0)


def _client(router: respx.Router, provider: g.TokenProvider | None) -> g.AsyncGupshupClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    return g.AsyncGupshupClient(APP_ID, "sk_old", base_url=BASE_URL, http_client=http,
                                token_provider=provider, max_retries=0)  # fmt: skip


def _answer_by_token(request: httpx.Request) -> httpx.Response:
    if request.headers["authorization"] == "sk_new":
        return httpx.Response(200, json=SUCCESS)
    return httpx.Response(401, json=UNAUTHORIZED)


async def test_a_401_refreshes_the_token_once_and_sends_again(router: respx.Router) -> None:
    route = router.post(SEND_URL).mock(side_effect=_answer_by_token)
    provider = Provider("sk_new")
    async with _client(router, provider) as client:
        result = await client.send(TO, g.Text(body="hi"))
        await client.send(TO, g.Text(body="again"))  # the new token is kept
    assert result.message_id == "gs-1"
    assert [c.request.headers["authorization"] for c in route.calls] == [
        "sk_old",
        "sk_new",
        "sk_new",
    ]
    assert provider.refused == ["sk_old"]


async def test_without_a_provider_a_401_is_raised_after_one_request(router: respx.Router) -> None:
    route = router.post(SEND_URL).respond(401, json=UNAUTHORIZED)
    async with _client(router, None) as client:
        with pytest.raises(g.AuthenticationError):
            await client.send(TO, g.Text(body="hi"))
    assert route.call_count == 1


async def test_a_second_401_is_raised_not_retried_again(router: respx.Router) -> None:
    route = router.post(SEND_URL).respond(401, json=UNAUTHORIZED)
    provider = Provider("sk_new", "sk_newer")
    async with _client(router, provider) as client:
        with pytest.raises(g.AuthenticationError) as info:
            await client.send(TO, g.Text(body="hi"))
    assert route.call_count == 2
    assert provider.refused == ["sk_old"]
    assert "sk_" not in repr(info.value) + str(info.value)


async def test_a_provider_with_nothing_newer_lets_the_401_through(router: respx.Router) -> None:
    route = router.post(SEND_URL).respond(401, json=UNAUTHORIZED)
    provider = Provider("sk_old")
    async with _client(router, provider) as client:
        with pytest.raises(g.AuthenticationError):
            await client.send(TO, g.Text(body="hi"))
    assert route.call_count == 1


async def test_upload_and_mark_read_refresh_too(router: respx.Router) -> None:
    def by_token(ok: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
        return lambda r: ok if r.headers["authorization"] == "sk_new" else httpx.Response(401)

    media = router.post(f"{BASE_URL}/partner/app/{APP_ID}/media").mock(
        side_effect=by_token(httpx.Response(200, json={"mediaId": "m-1", "status": "success"}))
    )
    event = router.post(f"{BASE_URL}/partner/app/{APP_ID}/v1/event").mock(
        side_effect=by_token(httpx.Response(200, json={"status": "success"}))
    )
    provider = Provider("sk_new")
    async with _client(router, provider) as client:
        assert await client.upload_media(b"%PDF", "application/pdf") == "m-1"
        await client.mark_read("wamid.1")
    assert (media.call_count, event.call_count) == (2, 1)
    assert provider.refused == ["sk_old"]


@pytest.fixture
async def server() -> AsyncIterator[MockGupshupServer]:
    async with MockGupshupServer() as mock:
        yield mock


async def test_a_rotated_token_heals_a_bulk_run_with_one_token_fetch(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    routes = server.app.partner
    async with g.PartnerClient(email=routes.email, password=routes.password,
                               base_url=server.base_url) as partner:  # fmt: skip
        token = await partner.app_token(server.app_id)
        async with g.AsyncGupshupClient(
            server.app_id, token, base_url=server.base_url,
            token_provider=partner.app_token_provider(server.app_id),
        ) as client:  # fmt: skip
            routes.rotate_app_token()
            numbers = [f"9170{i:08d}" for i in range(50)]
            results = await g.BulkSender(client, rate=None, concurrency=16).send(
                numbers, g.Text(body="hi")
            )
    assert [r["success"] for r in results] == [True] * 50
    assert server.app.recorder.total_accepted == 50
    assert dict(routes.calls) == {"login": 1, "token": 2}


class _HangingProvider:
    """A token provider that never answers (a vault that hangs)."""

    async def get_token(self, *, refresh_from: str | None = None) -> str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_hanging_token_provider_is_bounded_by_the_clients_timeout(
    router: respx.Router,
) -> None:
    """The refresh after a 401 gets the client's timeout: a not-ambiguous AuthenticationError
    (the 401 proved nothing was sent), not a send() that hangs."""
    route = router.post(SEND_URL).mock(return_value=httpx.Response(401, json=UNAUTHORIZED))
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    async with g.AsyncGupshupClient(
        APP_ID, "sk_old", base_url=BASE_URL, http_client=http, timeout=0.2,
        token_provider=_HangingProvider(), max_retries=0,
    ) as client:  # fmt: skip
        with pytest.raises(g.AuthenticationError) as info:
            await asyncio.wait_for(client.send(TO, g.Text(body="hi")), 10)
    await http.aclose()
    assert info.value.ambiguous is False
    assert "within 0.2 s" in str(info.value)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert route.call_count == 1
