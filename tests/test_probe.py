"""Adversarial probes of issues 9 and 12 as landed: a hostile server, misuse, secrets, models.

Every test that fails on today's code is marked `xfail(strict=True)` with the finding in one
line, so the suite stays green and each fix turns its test into an unexpected pass (strict:
then remove the mark). The tests without a mark are probes that found the code sound and guard
something the other tests do not.

Loopback only. The server here is a scripted raw-asyncio one (a handler per request answers
bytes, or writes them itself), sharing no code with the SDK; memory is measured in a child.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

import gupshup_async as g
from gupshup_async import _retry

from .hostile_server import HostileServer

TOKEN = "sk_probe_5ecret7oken"
NEW_TOKEN = "sk_probe_n3wer7oken"
PASSWORD = "pw_probe_5ecret"
PARTNER_TOKEN = "pt_probe_5ecret7oken"
APP = "app"
TO = "919876543210"
ROOT = Path(__file__).resolve().parent.parent
GUARD = 20.0  # seconds: far above every bound probed here, far below "forever"
SUCCESS = {"messages": [{"id": "gs-probe"}]}

Writer = Callable[[asyncio.StreamWriter], Awaitable[bool | None]]
Handler = Callable[[str, str, dict[str, str], bytes], "bytes | Writer"]


def answer(status: int, body: bytes | dict[str, Any] = b"", extra: str = "") -> bytes:
    """A whole HTTP/1.1 answer with a correct Content-Length."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    head = f"HTTP/1.1 {status} Probe\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(body)}\r\n{extra}\r\n".encode() + body


class ScriptServer:
    """A loopback HTTP/1.1 server whose `handler(method, path, headers, body)` answers.

    The handler returns the raw answer bytes, or an async writer that writes them itself (and
    returns False to close the connection). `requests` lists (method, path) of every request
    read whole, so a test knows what reached the server.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> ScriptServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((method, path))
                out = self.handler(method, path, headers, body)
                if isinstance(out, bytes):
                    writer.write(out)
                    await writer.drain()
                elif await out(writer) is False:
                    break
        except (asyncio.CancelledError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def always(raw: bytes) -> Handler:
    return lambda method, path, headers, body: raw


def report_with_locals(error: BaseException) -> str:
    """What an error reporter capturing frame locals (as Sentry does) prints, whole chain."""
    lines: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        report = traceback.TracebackException(
            type(current), current, current.__traceback__, capture_locals=True
        )
        lines.extend(report.format())
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return "".join(lines)


async def _no_sleep(seconds: float) -> None:
    return None


class _FixedProvider:
    """A token provider that always offers `token` (or raises `error`)."""

    def __init__(self, token: Any = NEW_TOKEN, error: BaseException | None = None) -> None:
        self.token = token
        self.error = error
        self.calls = 0

    async def get_token(self, *, refresh_from: str | None = None) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.token  # type: ignore[no-any-return]


# Malformed answer heads and chunking: a raw aiohttp exception escapes -----------------------

MANY_HEADERS = (
    b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
    + answer(200, SUCCESS)[len(b"HTTP/1.1 200 Probe\r\n") :]
)
LONG_HEADER = (
    b"HTTP/1.1 200 OK\r\nX-Long: "
    + b"a" * 1_000_000
    + b"\r\n"
    + answer(200, SUCCESS)[len(b"HTTP/1.1 200 Probe\r\n") :]
)
BAD_CHUNK = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"


async def _malformed_probe(call: str, base_url: str, http: httpx.AsyncClient | None) -> None:
    if call == "app_token":
        async with g.PartnerClient(
            partner_token=PARTNER_TOKEN, base_url=base_url, http_client=http
        ) as partner:
            await partner.app_token(APP)
        return
    async with g.AsyncGupshupClient(
        APP, TOKEN, base_url=base_url, http_client=http, max_retries=0
    ) as client:
        if call == "send":
            await client.send(TO, g.Text(body="hi"))
        elif call == "mark_read":
            await client.mark_read("wamid.1")
        else:
            await client.upload_media(b"%PDF-1.4", "application/pdf")


@pytest.mark.parametrize(
    "raw", [MANY_HEADERS, LONG_HEADER, BAD_CHUNK], ids=["10000-headers", "1MB-header", "bad-chunk"]
)
@pytest.mark.parametrize(
    "call",
    [
        "send",
        "mark_read",
        "upload",
        "app_token",
    ],
)
async def test_a_malformed_answer_is_a_gupshup_error_without_a_secret(
    call: str, raw: bytes
) -> None:
    """On the default transport (aiohttp): 10 000 headers, a 1 MB header line, bad chunking."""
    async with ScriptServer(always(raw)) as server:
        with pytest.raises(Exception) as info:  # noqa: PT011 - the probe asks which
            await asyncio.wait_for(_malformed_probe(call, server.base_url, None), GUARD)
    assert isinstance(info.value, g.GupshupError), repr(info.value)
    report = report_with_locals(info.value)
    assert TOKEN not in report
    assert PARTNER_TOKEN not in report


@pytest.mark.parametrize("raw", [LONG_HEADER, BAD_CHUNK], ids=["1MB-header", "bad-chunk"])
async def test_a_malformed_answer_over_a_callers_httpx_client_is_an_ambiguous_error(
    raw: bytes,
) -> None:
    async with ScriptServer(always(raw)) as server, httpx.AsyncClient() as http:
        with pytest.raises(g.APIConnectionError) as info:
            await asyncio.wait_for(_malformed_probe("send", server.base_url, http), GUARD)
    assert info.value.ambiguous is True
    assert TOKEN not in report_with_locals(info.value)


async def test_a_malformed_answer_fails_each_recipient_not_the_bulk_run() -> None:
    async with (
        ScriptServer(always(MANY_HEADERS)) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url, max_retries=0) as client,
    ):
        results = await asyncio.wait_for(
            g.BulkSender(client, rate=None).send([TO, "919876543211"], g.Text(body="hi")), GUARD
        )
    assert [r["success"] for r in results] == [False, False]


# Secrets in the frame locals an error reporter captures --------------------------------------


async def test_no_app_token_in_frame_locals_of_a_refused_read_receipt() -> None:
    async with (
        ScriptServer(always(answer(400, {"message": "no"}))) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url) as client,
    ):
        with pytest.raises(g.BadRequestError) as info:
            await client.mark_read("wamid.1")
    assert TOKEN not in report_with_locals(info.value)


@pytest.mark.parametrize("status", [500, 401])
async def test_no_token_in_frame_locals_when_a_token_provider_is_set(status: int) -> None:
    async with (
        ScriptServer(always(answer(status, {"message": "no"}))) as server,
        g.AsyncGupshupClient(
            APP, TOKEN, base_url=server.base_url, max_retries=0, token_provider=_FixedProvider()
        ) as client,
    ):
        with pytest.raises(g.APIError) as info:
            await client.send(TO, g.Text(body="hi"))
    report = report_with_locals(info.value)
    assert TOKEN not in report
    assert NEW_TOKEN not in report


async def test_no_partner_token_in_frame_locals_of_a_refused_app_token_fetch() -> None:
    async with (
        ScriptServer(always(answer(403, {"message": "no"}))) as server,
        g.PartnerClient(partner_token=PARTNER_TOKEN, base_url=server.base_url) as partner,
    ):
        with pytest.raises(g.PermissionDeniedError) as info:
            await partner.app_token(APP)
    assert PARTNER_TOKEN not in report_with_locals(info.value)


async def test_no_password_in_frame_locals_of_a_login_that_times_out() -> None:
    async def silent(writer: asyncio.StreamWriter) -> bool:
        await asyncio.Event().wait()
        return False

    async with (
        ScriptServer(lambda *_: silent) as server,
        g.PartnerClient(
            email="ops@example.com", password=PASSWORD, base_url=server.base_url, timeout=0.5
        ) as partner,
    ):
        with pytest.raises(g.APITimeoutError) as info:
            await asyncio.wait_for(partner.partner_token(), GUARD)
    assert PASSWORD not in report_with_locals(info.value)


async def test_no_password_in_frame_locals_of_a_refused_login() -> None:
    async with (
        ScriptServer(always(answer(401, {"message": "bad login"}))) as server,
        g.PartnerClient(email="ops@example.com", password=PASSWORD, base_url=server.base_url) as p,
    ):
        with pytest.raises(g.AuthenticationError) as info:
            await p.partner_token()
    assert PASSWORD not in report_with_locals(info.value)


async def test_no_secret_in_any_debug_log_record(caplog: pytest.LogCaptureFixture) -> None:
    """httpx, httpcore, aiohttp and the SDK at DEBUG, on sends, read receipts and token calls."""

    def route(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if path.endswith("/login"):
            return answer(200, {"token": PARTNER_TOKEN})
        if path.endswith("/token"):
            return answer(200, {"token": {"token": TOKEN, "expiresOn": 0}})
        if path.endswith("/v3/message"):
            return answer(401, {"message": "expired"})
        return answer(200, {"status": "success"})

    caplog.set_level(logging.DEBUG)
    async with ScriptServer(route) as server:
        for http in (None, httpx.AsyncClient()):
            async with (
                g.PartnerClient(
                    email="ops@example.com",
                    password=PASSWORD,
                    base_url=server.base_url,
                    http_client=http,
                ) as partner,
                g.AsyncGupshupClient(
                    APP,
                    await partner.app_token(APP),
                    base_url=server.base_url,
                    http_client=http,
                    token_provider=partner.app_token_provider(APP),
                ) as client,
            ):
                with pytest.raises(g.AuthenticationError):
                    await client.send(TO, g.Text(body="hi"))
                await client.mark_read("wamid.1", typing=True)
            if http is not None:
                await http.aclose()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) > 5
    for secret in (TOKEN, PASSWORD, PARTNER_TOKEN):
        assert secret not in text


# A failed token refresh after a 401 is not "may have been delivered" --------------------------


async def test_a_failed_token_refresh_after_a_401_is_not_ambiguous() -> None:
    """The 401 proved nothing was sent; the token endpoint failing changes nothing about it."""

    def route(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if path.endswith("/v3/message"):
            return answer(401, {"message": "token expired"})
        return answer(500, {"message": "token service down"})

    async with (
        ScriptServer(route) as server,
        g.PartnerClient(partner_token=PARTNER_TOKEN, base_url=server.base_url) as partner,
        g.AsyncGupshupClient(
            APP,
            TOKEN,
            base_url=server.base_url,
            token_provider=partner.app_token_provider(APP),
        ) as client,
    ):
        with pytest.raises(g.GupshupError) as info:
            await client.send(TO, g.Text(body="hi"))
        assert server.requests == [
            ("POST", f"/partner/app/{APP}/v3/message"),
            ("GET", f"/partner/app/{APP}/token"),
        ]
    assert info.value.ambiguous is False


async def test_a_failed_token_refresh_in_a_bulk_run_is_not_reported_ambiguous() -> None:
    seen: list[g.Outcome] = []
    provider = _FixedProvider(error=g.APITimeoutError("token call timed out", ambiguous=True))
    async with (
        ScriptServer(always(answer(401, {"message": "token expired"}))) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url, token_provider=provider) as c,
    ):
        await g.BulkSender(c, rate=None, on_result=seen.append).send([TO], g.Text(body="hi"))
    assert len(server.requests) == 1
    assert [o.status for o in seen] != ["ambiguous"]


@pytest.mark.parametrize(
    "provider",
    [_FixedProvider(token="Bearer sk_x"), _FixedProvider(error=RuntimeError("vault down"))],
    ids=["bearer-prefix", "provider-raises"],
)
async def test_a_broken_token_provider_fails_recipients_not_the_bulk_run(
    provider: _FixedProvider,
) -> None:
    async with (
        ScriptServer(always(answer(401, {"message": "token expired"}))) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url, token_provider=provider) as c,
    ):
        results = await g.BulkSender(c, rate=None, concurrency=1).send(
            [TO, "919876543211"], g.Text(body="hi")
        )
    assert [r["success"] for r in results] == [False, False]


async def test_a_provider_token_with_the_bearer_prefix_is_refused_without_echoing_it() -> None:
    async with (
        ScriptServer(always(answer(401, {"message": "token expired"}))) as server,
        g.AsyncGupshupClient(
            APP,
            TOKEN,
            base_url=server.base_url,
            token_provider=_FixedProvider("Bearer " + NEW_TOKEN),
        ) as client,
    ):
        with pytest.raises(g.InvalidCredentialsError) as info:
            await client.send(TO, g.Text(body="hi"))
        assert len(server.requests) == 1  # never sent with the bad token
    assert NEW_TOKEN not in str(info.value)


# The partner calls from a second event loop ------------------------------------------------------


@pytest.fixture
def threaded_server() -> Iterator[HostileServer]:
    """A hostile "ok" server on its own thread and loop, outliving the test's loops."""
    server = HostileServer("ok")
    ready = threading.Event()
    stop: list[asyncio.Future[None]] = []

    async def serve() -> None:
        async with server:
            stop.append(asyncio.get_running_loop().create_future())
            ready.set()
            await stop[0]

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    ready.wait(10)
    try:
        yield server
    finally:
        loop = stop[0].get_loop()
        loop.call_soon_threadsafe(stop[0].set_result, None)
        thread.join(10)


def _on_two_loops(
    server: HostileServer,
    first: Callable[[g.AsyncGupshupClient], Awaitable[object]],
    second: Callable[[g.AsyncGupshupClient], Awaitable[object]],
) -> tuple[BaseException | None, int]:
    """Run `first` on one loop, then `second` on another; the error and requests it made."""
    client = g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url)
    loop = asyncio.new_event_loop()
    error: BaseException | None = None
    try:
        loop.run_until_complete(first(client))
        before = server.requests

        async def bounded() -> None:
            await asyncio.wait_for(second(client), GUARD)

        try:
            asyncio.run(bounded())
        except BaseException as exc:  # the probe reports whatever escaped
            error = exc
        return error, server.requests - before
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


async def _send(client: g.AsyncGupshupClient) -> object:
    return await client.send(TO, g.Text(body="hi"))


async def _mark_read(client: g.AsyncGupshupClient) -> object:
    await client.mark_read("wamid.1")
    return None


async def _upload(client: g.AsyncGupshupClient) -> object:
    return await client.upload_media(b"%PDF-1.4", "application/pdf")


@pytest.mark.parametrize(
    ("first", "second"),
    [(_send, _mark_read), (_send, _upload), (_mark_read, _send)],
    ids=["send-then-mark_read", "send-then-upload", "mark_read-then-send"],
)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_second_event_loop_is_refused_before_any_byte_for_every_call(
    threaded_server: HostileServer,
    first: Callable[[g.AsyncGupshupClient], Awaitable[object]],
    second: Callable[[g.AsyncGupshupClient], Awaitable[object]],
) -> None:
    error, requests = _on_two_loops(threaded_server, first, second)
    assert isinstance(error, RuntimeError)
    assert "event loop" in str(error)
    assert requests == 0


# Settings and input checks the partner side skips ------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["http://10.1.2.3", "partner.gupshup.io", "ftp://partner.gupshup.io"]
)
def test_partner_client_refuses_a_base_url_that_leaks_or_cannot_work(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        g.PartnerClient(email="ops@example.com", password=PASSWORD, base_url=base_url)


@pytest.mark.parametrize("timeout", [float("nan"), 0.0, -1.0, float("inf")])
def test_partner_client_refuses_a_timeout_that_cannot_bound(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        g.PartnerClient(partner_token=PARTNER_TOKEN, timeout=timeout)


async def test_app_token_refuses_an_app_id_with_url_characters_before_any_request() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"token": {"token": "sk_x", "expiresOn": 0}})

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        g.PartnerClient(partner_token=PARTNER_TOKEN, http_client=http) as partner,
    ):
        with pytest.raises(ValueError, match="app_id"):
            await partner.app_token("other/../../account")
    assert calls == []


@pytest.mark.parametrize("message_id", ["w" * 1_000_000, "wamid.\ud800"], ids=["1MB", "surrogate"])
async def test_mark_read_refuses_a_message_id_that_cannot_be_one(message_id: str) -> None:
    async with (
        ScriptServer(always(answer(200, {"status": "success"}))) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url) as client,
    ):
        with pytest.raises(ValueError, match="message_id"):
            await client.mark_read(message_id)
        assert server.requests == []


async def test_upload_media_refuses_a_bytearray_source_with_a_value_error() -> None:
    async with (
        ScriptServer(always(answer(200, {"mediaId": "m1"}))) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url) as client,
    ):
        with pytest.raises(ValueError, match="source"):
            await client.upload_media(bytearray(b"%PDF-1.4"), "application/pdf")  # type: ignore[arg-type]


# Partner answers a hostile server can shape ------------------------------------------------------

DEEP_JSON = b"[" * 10_000 + b"]" * 10_000


@pytest.mark.parametrize("call", ["upload", "app_token"])
async def test_deeply_nested_json_from_a_partner_endpoint_is_a_gupshup_error(call: str) -> None:
    async def upload(base_url: str) -> object:
        async with g.AsyncGupshupClient(APP, TOKEN, base_url=base_url) as client:
            return await client.upload_media(b"%PDF-1.4", "application/pdf")

    async def app_token(base_url: str) -> object:
        async with g.PartnerClient(partner_token=PARTNER_TOKEN, base_url=base_url) as partner:
            return await partner.app_token(APP)

    probe = upload if call == "upload" else app_token
    async with ScriptServer(always(answer(200, DEEP_JSON))) as server:
        with pytest.raises(g.UnexpectedResponseError):
            await probe(server.base_url)


async def test_an_upload_from_a_url_is_bounded_by_one_timeout_in_all() -> None:
    """Each half drips for ~1.7 s under timeout=2: the whole upload must end by ~2.5 s."""

    async def drip(writer: asyncio.StreamWriter, body: bytes) -> bool:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        await writer.drain()
        for byte in body:
            await asyncio.sleep(1.7 / len(body))
            writer.write(bytes([byte]))
            await writer.drain()
        return True

    def route(method: str, path: str, headers: dict[str, str], body: bytes) -> Writer:
        if path.startswith("/source"):
            return lambda writer: drip(writer, b"%PDF-1.4 dripping")
        return lambda writer: drip(writer, b'{"mediaId":"m1","status":"success"}')

    async with (
        ScriptServer(route) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url) as client,
    ):
        started = time.monotonic()
        with contextlib.suppress(g.GupshupError, ValueError):
            await asyncio.wait_for(
                client.upload_media(
                    f"{server.base_url}/source/a.pdf", "application/pdf", timeout=2.0
                ),
                GUARD,
            )
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 0.5


_URL_BOMB_CHILD = """
import asyncio, json, sys
from tests.hostile_client import PeakRss, _rss
import gupshup_async as g

async def main(base_url):
    async with g.AsyncGupshupClient("app", "tok", base_url=base_url) as client:
        baseline = _rss()
        sampler = PeakRss()
        try:
            await asyncio.wait_for(client.upload_media(base_url + "/a.jpg", "image/jpeg"), 30)
            error = None
        except Exception as exc:
            error = type(exc).__name__
        print(json.dumps({"error": error, "growth_mb": (sampler.stop() - baseline) / 2**20}))

asyncio.run(main(sys.argv[1]))
"""


async def test_a_gzip_bomb_as_a_media_url_is_abandoned_in_bounded_memory() -> None:
    from .hostile_server import gzip_bomb

    bomb = gzip_bomb()

    async def send_bomb(writer: asyncio.StreamWriter) -> bool:
        head = "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: image/jpeg\r\n"
        writer.write(f"{head}Content-Length: {len(bomb)}\r\n\r\n".encode())
        for start in range(0, len(bomb), 65536):
            writer.write(bomb[start : start + 65536])
            await writer.drain()
        return False

    async with ScriptServer(lambda *_: send_bomb) as server:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _URL_BOMB_CHILD, server.base_url,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(child.communicate(), 60)
    measured = json.loads(out)
    assert measured["error"] == "ValueError", measured
    assert measured["growth_mb"] < 20, measured


# Answers that looked odd but are handled (guards) ---------------------------------------------


@pytest.mark.parametrize("transport", ["default", "httpx"])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + answer(200, SUCCESS), "gs-probe"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + answer(200, SUCCESS), "gs-probe"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", g.UnexpectedResponseError),
        (answer(307, b"", "Location: http://127.0.0.1:1/elsewhere\r\n"), g.APIError),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b'{"messages"',
            g.APIConnectionError,
        ),
        (answer(200, b"\x00\x01brotli?", "Content-Encoding: br\r\n"), g.UnexpectedResponseError),
        (answer(200, b"\x28\xb5\x2f\xfd", "Content-Encoding: zstd\r\n"), g.UnexpectedResponseError),
    ],
    ids=["103-then-200", "100-then-200", "204", "307", "short-content-length", "br", "zstd"],
)
async def test_odd_but_honest_answers_are_classified(
    raw: bytes, expected: str | type[g.GupshupError], transport: str
) -> None:
    http = httpx.AsyncClient() if transport == "httpx" else None
    try:
        async with (
            ScriptServer(lambda *_: _once(raw)) as server,
            g.AsyncGupshupClient(
                APP, TOKEN, base_url=server.base_url, http_client=http, max_retries=0
            ) as client,
        ):
            if isinstance(expected, str):
                result = await asyncio.wait_for(client.send(TO, g.Text(body="hi")), GUARD)
                assert result.message_id == expected
            else:
                with pytest.raises(expected) as info:
                    await asyncio.wait_for(client.send(TO, g.Text(body="hi")), GUARD)
                assert type(info.value) is expected
                # a redirect is an answer (nothing processed); the rest may have been accepted
                assert info.value.ambiguous is (expected is not g.APIError)
            assert len(server.requests) == 1  # never followed, never sent twice
    finally:
        if http is not None:
            await http.aclose()


def _once(raw: bytes) -> Writer:
    async def write(writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        await writer.drain()
        return False  # close: a short body then ends as the client sees it

    return write


@pytest.mark.parametrize("value", ["-1", "NaN", "nan", "1e309", "inf", "-inf", "0x10", ""])
def test_an_absurd_retry_after_is_ignored_not_honoured(value: str) -> None:
    assert _retry.parse_retry_after({"retry-after": value}) is None
    assert _retry.parse_retry_after({"retry-after-ms": value, "retry-after": "2"}) == 2.0


async def test_a_utf16_error_body_keeps_its_code() -> None:
    body = json.dumps({"message": "pair rate", "code": 131056}).encode("utf-16")
    raw = answer(400, body).replace(b"application/json", b"application/json; charset=utf-16")
    async with (
        ScriptServer(always(raw)) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(g.APIError) as info:
            await client.send(TO, g.Text(body="hi"))
    assert (type(info.value), info.value.code) == (g.RateLimitError, 131056)


@pytest.mark.parametrize("value", [0, -1, 1023, True, 1.5e6, float("nan")])
def test_max_response_bytes_that_cannot_bound_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="max_response_bytes"):
        g.AsyncGupshupClient(APP, TOKEN, max_response_bytes=value)  # type: ignore[arg-type]


async def test_a_huge_max_response_bytes_still_reads_a_normal_answer() -> None:
    async with (
        ScriptServer(always(answer(200, SUCCESS))) as server,
        g.AsyncGupshupClient(
            APP, TOKEN, base_url=server.base_url, max_response_bytes=10**18
        ) as client,
    ):
        assert (await client.send(TO, g.Text(body="hi"))).message_id == "gs-probe"


# Misuse after aclose --------------------------------------------------------------------------


async def test_a_closed_client_sends_nothing_even_over_a_callers_http_client() -> None:
    async with (
        ScriptServer(always(answer(200, SUCCESS))) as server,
        httpx.AsyncClient() as http,
    ):
        client = g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url, http_client=http)
        await client.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await client.send(TO, g.Text(body="hi"))
        assert server.requests == []


async def test_a_closed_client_refuses_every_call_without_a_request() -> None:
    async with ScriptServer(always(answer(200, SUCCESS))) as server:
        client = g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url)
        await client.aclose()
        await client.aclose()  # twice is harmless
        for call in (_send, _mark_read, _upload):
            with pytest.raises(RuntimeError, match="closed"):
                await call(client)
        assert server.requests == []


# Models: nothing dropped or rewritten on a round trip ----------------------------------------


def _round_trip(body: dict[str, Any]) -> None:
    """Either refused with a ValueError, or read and written back exactly."""
    try:
        message = g.message_from_wire(body)
    except ValueError:
        return
    assert message.to_wire() == body


SECTION = [{"title": "S", "rows": [{"id": "1", "title": "One"}]}]
FLOW_PARAMETERS = {"flow_message_version": "3", "flow_id": "1", "flow_cta": "Go"}


@pytest.mark.parametrize(
    "body",
    [
        {"type": "image", "image": {"link": "https://e.example/a.jpg", "https_only": True}},
        {"type": "sticker", "sticker": {"id": "123", "allow_url_id": False}},
        {"type": "reaction", "reaction": {"message_id": "w", "emoji": "👍", "allow_text_emoji": True}},
    ],
    ids=["https_only", "allow_url_id", "allow_text_emoji"],
)  # fmt: skip
def test_an_sdk_switch_is_not_read_from_the_wire(body: dict[str, Any]) -> None:
    _round_trip(body)


@pytest.mark.parametrize(
    "interactive",
    [
        {"type": "list", "body": {"text": "B"}, "action": {"button": "Menu", "sections": SECTION, "footer": "F"}},
        {"type": "list", "body": {"text": "B"}, "action": {"button": "Menu", "sections": SECTION, "body": "X"}},
        {"type": "cta_url", "body": {"text": "B"}, "action": {"name": "cta_url", "parameters": {"display_text": "Go", "url": "https://e.example", "header": "H"}}},
        {"type": "flow", "body": {"text": "B"}, "action": {"name": "flow", "parameters": {**FLOW_PARAMETERS, "flow_token": "t", "flow_action": "navigate", "screen": "S1"}}},
        {"type": "catalog_message", "body": {"text": "B"}, "action": {"name": "catalog_message", "parameters": {"thumbnail_product_retailer_id": "p", "footer": "F"}}},
        {"type": "address_message", "body": {"text": "B"}, "action": {"name": "address_message", "parameters": {"country": "IN", "body": "X"}}},
    ],
    ids=["list-footer-in-action", "list-body-in-action", "cta-header-in-parameters", "flow-screen-outside-payload", "catalog-footer-in-parameters", "address-body-in-parameters"],
)  # fmt: skip
def test_a_field_in_the_wrong_place_is_refused_not_moved(interactive: dict[str, Any]) -> None:
    _round_trip({"type": "interactive", "interactive": interactive})


def test_a_flow_without_token_and_action_is_sent_back_as_read() -> None:
    interactive = {
        "type": "flow",
        "body": {"text": "B"},
        "action": {"name": "flow", "parameters": FLOW_PARAMETERS},
    }
    _round_trip({"type": "interactive", "interactive": interactive})


@pytest.mark.parametrize("kind", [["text"], {"text": 1}])
def test_a_type_that_is_not_a_string_is_a_value_error(kind: object) -> None:
    with pytest.raises(ValueError, match="type"):
        g.message_from_wire({"type": kind})


@pytest.mark.parametrize(
    "body",
    [
        {"type": "template", "template": {"name": "n", "language": {"code": "en", "policy": "deterministic"}}},
        {"type": "interactive", "interactive": {"type": "list", "body": {"text": "B"}, "action": {"button": "Menu", "sections": [{"rows": [{"id": "1", "title": "One", "description": ""}]}]}}},
        {"type": "interactive", "interactive": {"type": "flow", "body": {"text": "B"}, "action": {"name": "flow", "parameters": {**FLOW_PARAMETERS, "flow_token": "t", "flow_action": "navigate", "flow_action_payload": {"screen": "S1", "data": {"a": [1, 2.5, None]}}}}}},
        {"type": "audio", "audio": {"id": "1", "voice": True}},
        {"type": "interactive", "interactive": {"type": "button", "body": {"text": "B"}, "action": {"buttons": [{"type": "url", "reply": {"id": "1", "title": "t"}}]}}},
        {"type": "image", "image": {"link": "https://e.example/a.jpg", "provider": {"name": "x"}}},
    ],
    ids=["language-policy", "empty-row-description", "flow-payload", "voice", "button-type-url", "media-provider"],
)  # fmt: skip
def test_these_bodies_are_kept_exactly_or_refused(body: dict[str, Any]) -> None:
    _round_trip(body)


# Issue 12.2: biz_opaque_callback_data ----------------------------------------------------------


async def test_send_carries_biz_opaque_callback_data_and_checks_its_length() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=SUCCESS)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        g.AsyncGupshupClient(APP, TOKEN, http_client=http) as client,
    ):
        send: Any = client.send
        await send(TO, g.Text(body="hi"), biz_opaque_callback_data="campaign-7")
        with pytest.raises(ValueError, match="biz_opaque_callback_data"):
            await send(TO, g.Text(body="hi"), biz_opaque_callback_data="x" * 513)
    assert [b.get("biz_opaque_callback_data") for b in bodies] == ["campaign-7"]


def test_request_from_wire_reads_a_body_with_biz_opaque_callback_data() -> None:
    body = {
        "messaging_product": "whatsapp",
        "to": TO,
        "type": "text",
        "text": {"body": "hi"},
        "biz_opaque_callback_data": "campaign-7",
    }
    request = g.request_from_wire(body)
    to, message, reply_to = request
    assert (to, message, reply_to) == (TO, g.Text(body="hi"), None)
    assert request.biz_opaque_callback_data == "campaign-7"


# A compressed honest answer still inflates under the cap -------------------------------------


async def test_a_deflate_answer_split_in_tiny_chunks_is_read_whole() -> None:
    packed = zlib.compress(json.dumps(SUCCESS).encode())

    async def dribble(writer: asyncio.StreamWriter) -> bool:
        head = "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n"
        writer.write(head.encode())
        for byte in packed:
            writer.write(b"1\r\n" + bytes([byte]) + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async with (
        ScriptServer(lambda *_: dribble) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url) as client,
    ):
        assert (await client.send(TO, g.Text(body="hi"))).message_id == "gs-probe"


# Cancellation and closing mid-call ------------------------------------------------------------


async def test_closing_the_client_under_a_send_in_flight_is_an_ambiguous_connection_error() -> None:
    async def slow(writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(1.0)
        writer.write(answer(200, SUCCESS))
        await writer.drain()
        return True

    async with ScriptServer(lambda *_: slow) as server:
        client = g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url)
        sending = asyncio.create_task(client.send(TO, g.Text(body="hi")))
        await asyncio.sleep(0.3)  # the request is on the wire; the answer is 0.7 s away
        assert server.requests == [("POST", f"/partner/app/{APP}/v3/message")]
        await client.aclose()
        with pytest.raises(g.APIConnectionError) as info:
            await asyncio.wait_for(sending, GUARD)
    assert info.value.ambiguous is True


async def test_cancelling_an_upload_from_a_path_leaves_no_file_open(tmp_path: Path) -> None:
    import gc
    import warnings

    path = tmp_path / "brochure.pdf"
    path.write_bytes(b"%PDF-1.4" + bytes(100_000))
    async with (
        ScriptServer(always(answer(200, {"mediaId": "m1"}))) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url) as client,
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            uploading = asyncio.create_task(client.upload_media(path, "application/pdf"))
            await asyncio.sleep(0)  # the upload is now waiting for its worker thread's open()
            uploading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await uploading
            await asyncio.sleep(0.2)  # the thread's open() has returned by now
            gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.parametrize("transport", ["default", "httpx"])
async def test_a_success_in_raw_deflate_is_read_as_httpx_reads_it(transport: str) -> None:
    """Many servers send 'deflate' without the zlib wrapper; httpx reads it, so must the SDK."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = packer.compress(json.dumps(SUCCESS).encode()) + packer.flush()
    http = httpx.AsyncClient() if transport == "httpx" else None
    try:
        async with (
            ScriptServer(always(answer(200, body, "Content-Encoding: deflate\r\n"))) as server,
            g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url, http_client=http) as client,
        ):
            assert (await client.send(TO, g.Text(body="hi"))).message_id == "gs-probe"
    finally:
        if http is not None:
            await http.aclose()


@pytest.mark.parametrize("timeout", [float("nan"), 0.0, -1.0, float("inf")])
async def test_upload_media_refuses_a_timeout_that_cannot_bound_before_any_request(
    timeout: float,
) -> None:
    async with (
        ScriptServer(always(answer(200, {"mediaId": "m1"}))) as server,
        g.AsyncGupshupClient(APP, TOKEN, base_url=server.base_url) as client,
    ):
        with pytest.raises(ValueError, match="timeout"):
            await asyncio.wait_for(
                client.upload_media(b"%PDF-1.4", "application/pdf", timeout=timeout), GUARD
            )
        assert server.requests == []
