"""Issue 12 section 3: tokens, media uploads and read receipts, on the wire and against the
mock's own partner endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

import gupshup_async as g
from gupshup_async.mock import MockGupshupApp, MockGupshupServer, mock_transport
from gupshup_async.mock._partner_routes import _multipart

from .conftest import APP_ID, BASE_URL, TOKEN
from .meta_examples import META_SCHEMA, meta_examples

EMAIL = "partner@example.com"
PASSWORD = "mock-password"
MEDIA_URL = f"{BASE_URL}/partner/app/{APP_ID}/media"
EVENT_URL = f"{BASE_URL}/partner/app/{APP_ID}/v1/event"


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def mock_app(fake_time: FakeTime) -> MockGupshupApp:
    app = MockGupshupApp(token="sk_first", app_id=APP_ID)
    app.partner._clock = fake_time  # the mock's own window, on the same fake clock
    return app


@pytest.fixture
async def partner(mock_app: MockGupshupApp, fake_time: FakeTime) -> AsyncIterator[g.PartnerClient]:
    http = httpx.AsyncClient(transport=mock_transport(mock_app))
    async with http, g.PartnerClient(
        email=EMAIL, password=PASSWORD, base_url=BASE_URL, http_client=http,
        clock=fake_time, wall_clock=fake_time, sleep=fake_time.sleep,
    ) as client:  # fmt: skip
        yield client


# ---- tokens -----------------------------------------------------------------------------------


async def test_login_then_app_token_then_both_come_from_the_cache(
    partner: g.PartnerClient, mock_app: MockGupshupApp
) -> None:
    assert await partner.app_token(APP_ID) == "sk_first"
    assert await partner.app_token(APP_ID) == "sk_first"
    assert dict(mock_app.partner.calls) == {"login": 1, "token": 1}


async def test_the_partner_token_is_renewed_after_24_hours(
    partner: g.PartnerClient, mock_app: MockGupshupApp, fake_time: FakeTime
) -> None:
    first = await partner.partner_token()
    fake_time.now += 23 * 3600
    assert await partner.partner_token() == first
    mock_app.partner.expire_partner_token()
    fake_time.now += 3600
    assert await partner.partner_token() == mock_app.partner.partner_token != first
    assert mock_app.partner.calls["login"] == 2


async def test_a_refused_partner_token_logs_in_again_once(
    partner: g.PartnerClient, mock_app: MockGupshupApp
) -> None:
    await partner.app_token(APP_ID)
    mock_app.partner.expire_partner_token()
    mock_app.partner.rotate_app_token()
    assert await partner.app_token(APP_ID, refresh_from="sk_first") == mock_app.token
    assert dict(mock_app.partner.calls) == {"login": 2, "token": 3}


async def test_a_given_partner_token_is_used_without_login(mock_app: MockGupshupApp) -> None:
    http = httpx.AsyncClient(transport=mock_transport(mock_app))
    token = mock_app.partner.partner_token
    async with http, g.PartnerClient(partner_token=token, base_url=BASE_URL, http_client=http) as p:
        assert await p.app_token(APP_ID) == "sk_first"
        mock_app.partner.expire_partner_token()
        with pytest.raises(g.AuthenticationError):
            await p.app_token(APP_ID, refresh_from="sk_first")
    assert mock_app.partner.calls["login"] == 0


async def test_the_token_endpoint_is_called_at_most_10_times_a_minute(
    partner: g.PartnerClient, mock_app: MockGupshupApp, fake_time: FakeTime
) -> None:
    token = await partner.app_token(APP_ID)  # login + token: 2 calls at t=0
    for _ in range(9):
        token = await partner.app_token(APP_ID, refresh_from=token)
    assert fake_time.slept == [60.0]  # the 11th call waited for the first to leave the window
    assert dict(mock_app.partner.calls) == {"login": 1, "token": 10}


async def test_the_mock_answers_429_past_10_token_calls_a_minute(
    mock_app: MockGupshupApp,
) -> None:
    async with httpx.AsyncClient(transport=mock_transport(mock_app), base_url=BASE_URL) as http:
        headers = {"Authorization": mock_app.partner.partner_token}
        codes = [(await http.get(f"/partner/app/{APP_ID}/token", headers=headers)).status_code
                 for _ in range(11)]  # fmt: skip
    assert codes == [200] * 10 + [429]


async def test_concurrent_refreshes_of_one_refused_token_fetch_once(
    partner: g.PartnerClient, mock_app: MockGupshupApp
) -> None:
    await partner.app_token(APP_ID)
    new = mock_app.partner.rotate_app_token()
    tokens = await asyncio.gather(
        *(partner.app_token(APP_ID, refresh_from="sk_first") for _ in range(20))
    )
    assert set(tokens) == {new}
    assert mock_app.partner.calls["token"] == 2


async def test_expires_on_in_milliseconds_is_honoured(router: respx.Router) -> None:
    clock = FakeTime()
    router.post("/partner/account/login").respond(200, json={"token": "pt"})
    answers = iter(
        [
            {"status": "success", "token": {"token": "sk_a", "expiresOn": 1_700_003_600_000}},
            {"status": "success", "token": {"token": "sk_b", "expiresOn": 0}},
        ]
    )
    route = router.get(f"/partner/app/{APP_ID}/token").mock(
        side_effect=lambda request: httpx.Response(200, json=next(answers))
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    async with http, g.PartnerClient(email=EMAIL, password=PASSWORD, base_url=BASE_URL,
                                     http_client=http, wall_clock=clock) as p:  # fmt: skip
        clock.now = 1_700_000_000.0  # epoch seconds; expiresOn is in ms, an hour later
        assert await p.app_token(APP_ID) == "sk_a"
        clock.now = 1_700_003_600.0 - 301  # beyond the 300 s margin: still fresh
        assert await p.app_token(APP_ID) == "sk_a"
        clock.now = 1_700_003_600.0 - 299
        assert await p.app_token(APP_ID) == "sk_b"
    assert route.call_count == 2


async def test_a_token_answer_without_a_token_keeps_its_body_out_of_the_error(
    router: respx.Router,
) -> None:
    router.post("/partner/account/login").respond(200, json={"token": "pt"})
    router.get(f"/partner/app/{APP_ID}/token").respond(200, json={"token": {"tok": "sk_secret"}})
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    async with http, g.PartnerClient(email=EMAIL, password=PASSWORD, base_url=BASE_URL,
                                     http_client=http) as p:  # fmt: skip
        with pytest.raises(g.UnexpectedResponseError) as info:
            await p.app_token(APP_ID)
    assert "sk_secret" not in repr(info.value) + str(info.value) + info.value.body


async def test_no_secret_in_repr_log_or_error(
    partner: g.PartnerClient, mock_app: MockGupshupApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await partner.app_token(APP_ID)
    mock_app.partner.password = "changed"
    mock_app.partner.expire_partner_token()
    mock_app.partner.rotate_app_token()
    with pytest.raises(g.AuthenticationError) as info:
        await partner.app_token(APP_ID, refresh_from=token)
    seen = repr(partner) + repr(partner.app_token_provider(APP_ID)) + repr(info.value)
    seen += str(info.value) + caplog.text
    for secret in (PASSWORD, EMAIL, token, mock_app.partner.partner_token):
        assert secret not in seen


def test_partner_client_needs_credentials_or_a_token() -> None:
    with pytest.raises(ValueError, match="email and password, or a partner_token"):
        g.PartnerClient(email=EMAIL)


# ---- media ------------------------------------------------------------------------------------


@pytest.fixture
async def loopback() -> AsyncIterator[tuple[MockGupshupServer, g.AsyncGupshupClient]]:
    async with MockGupshupServer() as server, g.AsyncGupshupClient(
        server.app_id, server.token, base_url=server.base_url
    ) as client:  # fmt: skip
        yield server, client


async def test_upload_media_streams_a_file_and_returns_the_media_id(
    loopback: tuple[MockGupshupServer, g.AsyncGupshupClient], tmp_path: Path
) -> None:
    server, client = loopback
    content = bytes(range(256)) * 4096 + b"\r\n--"  # 1 MB, ending in bytes a parser might eat
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    media_id = await client.upload_media(path, "image/png")
    assert server.app.partner.uploads[media_id] == ("image/png", "photo.png", content)
    again = await client.upload_media(b"%PDF-1.4 tiny", "application/pdf")
    assert server.app.partner.uploads[again] == ("application/pdf", "media", b"%PDF-1.4 tiny")
    assert server.app.partner.calls["media"] == 2


async def test_upload_media_fetches_a_url_then_uploads_it(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    router.get("https://cdn.example/a/voice.ogg").respond(200, content=b"OggS" + b"x" * 1000)
    upload = router.post(MEDIA_URL).respond(200, json={"mediaId": "m-1", "status": "success"})
    assert await client.upload_media("https://cdn.example/a/voice.ogg", "audio/ogg") == "m-1"
    request = upload.calls.last.request
    assert request.headers["authorization"] == TOKEN
    fields = _multipart(request.headers["content-type"], request.content)
    assert fields == {"file_type": ("audio/ogg", b""), "file": ("voice.ogg", b"OggS" + b"x" * 1000)}
    assert int(request.headers["content-length"]) == len(request.content)


@pytest.mark.parametrize(
    ("mime", "size", "words"),
    [
        ("image/gif", 10, "not one Meta accepts"),
        ("image/png", 5 * 1024 * 1024 + 1, "past Meta's limit of 5242880 bytes"),
        ("video/mp4", 16 * 1024 * 1024 + 1, "past Meta's limit of 16777216"),
        ("image/webp", 500 * 1024 + 1, "past Meta's limit of 512000"),
        ("application/pdf", 100 * 1024 * 1024 + 1, "past Meta's limit of 104857600"),
        ("application/pdf", 0, "empty"),
    ],
)
async def test_upload_media_checks_type_and_size_before_any_byte_is_sent(
    router: respx.Router, client: g.AsyncGupshupClient, tmp_path: Path,
    mime: str, size: int, words: str,
) -> None:  # fmt: skip
    upload = router.post(MEDIA_URL).respond(200, json={"mediaId": "m", "status": "success"})
    path = tmp_path / "big"
    with path.open("wb") as handle:
        handle.truncate(size)  # sparse: no real 100 MB on disk
    with pytest.raises(ValueError, match=words):
        await client.upload_media(path, mime)
    assert upload.call_count == 0


@pytest.mark.parametrize(
    ("headers", "body", "words"),
    [
        ({"content-length": str(6 * 1024 * 1024)}, b"", "declares 6291456 bytes"),
        ({}, b"x" * (5 * 1024 * 1024 + 1), "sent more than 5242880 bytes"),
    ],
)
async def test_upload_media_abandons_a_url_past_the_limit(
    router: respx.Router, client: g.AsyncGupshupClient,
    headers: dict[str, str], body: bytes, words: str,
) -> None:  # fmt: skip
    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    router.get("https://cdn.example/big.png").mock(
        return_value=httpx.Response(200, headers=headers, content=stream())
    )
    upload = router.post(MEDIA_URL).respond(200, json={"mediaId": "m", "status": "success"})
    with pytest.raises(ValueError, match=words):
        await client.upload_media("https://cdn.example/big.png", "image/png")
    assert upload.call_count == 0


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (httpx.ConnectError("refused"), "connection failed"),
        (httpx.ReadError("reset by peer"), "connection lost"),
    ],
)
async def test_a_media_url_that_cannot_be_fetched_is_bad_input_and_nothing_is_uploaded(
    router: respx.Router, client: g.AsyncGupshupClient, fault: Exception, words: str
) -> None:
    router.get("https://cdn.example/gone.png").mock(side_effect=fault)
    upload = router.post(MEDIA_URL).respond(200, json={"mediaId": "m", "status": "success"})
    with pytest.raises(ValueError, match=f"media URL could not be fetched \\({words}") as caught:
        await client.upload_media("https://cdn.example/gone.png", "image/png")
    assert not isinstance(caught.value, g.GupshupError)
    assert "nothing was uploaded" in str(caught.value)
    assert upload.call_count == 0


async def test_the_mock_refuses_media_past_its_own_limits(mock_app: MockGupshupApp) -> None:
    async with httpx.AsyncClient(transport=mock_transport(mock_app), base_url=BASE_URL) as http:
        headers = {"Authorization": "sk_first"}
        url = f"/partner/app/{APP_ID}/media"
        big = await http.post(url, headers=headers, data={"file_type": "image/png"},
                              files={"file": ("a.png", b"x" * (5 * 1024 * 1024 + 1), "image/png")})  # fmt: skip
        gif = await http.post(url, headers=headers, data={"file_type": "image/gif"},
                              files={"file": ("a.gif", b"GIF89a", "image/gif")})  # fmt: skip
        wrong = await http.post(url, headers={"Authorization": "nope"}, data={"file_type": "image/png"},
                                files={"file": ("a.png", b"x", "image/png")})  # fmt: skip
    assert (big.status_code, gif.status_code, wrong.status_code) == (400, 400, 401)
    assert "past the 5242880-byte limit" in big.json()["message"]
    assert "'image/gif' is not supported" in gif.json()["message"]
    assert mock_app.partner.uploads == {}


# ---- read receipts ----------------------------------------------------------------------------


@pytest.mark.skipif(not META_SCHEMA.exists(), reason="Meta's schema is not beside the project")
async def test_mark_read_sends_metas_read_receipt_with_typing_indicator(
    router: respx.Router, client: g.AsyncGupshupClient
) -> None:
    example = meta_examples()["Send typing indicator and read receipt"]
    route = router.post(EVENT_URL).respond(200, json={"status": "success"})
    await client.mark_read(example["message_id"], typing=True)
    request = route.calls.last.request
    assert request.headers["authorization"] == TOKEN
    assert json.loads(request.content) == {"type": "message-event", "message": example}


async def test_mark_read_on_the_mock_without_typing(
    loopback: tuple[MockGupshupServer, g.AsyncGupshupClient],
) -> None:
    server, client = loopback
    await client.mark_read("wamid.1")
    assert server.app.partner.read_events == [
        {"type": "message-event",
         "message": {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.1"}}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("message_id", "typing", "words"),
    [("", False, "message_id"), ("wamid.1", "yes", "typing must be True or False")],
)
async def test_mark_read_refuses_bad_input_before_any_request(
    router: respx.Router, client: g.AsyncGupshupClient, message_id: str, typing: Any, words: str
) -> None:
    route = router.post(EVENT_URL).respond(200, json={"status": "success"})
    with pytest.raises(ValueError, match=words):
        await client.mark_read(message_id, typing=typing)
    assert route.call_count == 0


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_is_the_sdks_connection_error_everywhere() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}"
    async with g.PartnerClient(email=EMAIL, password=PASSWORD, base_url=base_url) as p:
        with pytest.raises(g.APIConnectionError) as login:
            await p.app_token(APP_ID)
    async with g.AsyncGupshupClient(APP_ID, TOKEN, base_url=base_url) as client:
        with pytest.raises(g.APIConnectionError) as upload:
            await client.upload_media(b"%PDF", "application/pdf")
        with pytest.raises(g.APIConnectionError) as read:
            await client.mark_read("wamid.1")
    for error in (login.value, upload.value, read.value):
        assert error.ambiguous is False
        assert PASSWORD not in repr(error)
        assert TOKEN not in repr(error)
