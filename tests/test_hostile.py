"""The SDK against a hostile loopback server: bounded bodies, deadlines, waits, and no token.

Each test names the finding of the hardening issue it proves. Memory is measured in a child
process (`tests.hostile_client`) so one case cannot hide in another's peak; time bounds are
generous but far below what the unbounded code took (seconds against minutes or years).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest

import gupshup_async as g

from .hostile_server import HostileServer

TOKEN = "sk_hostile_5ecret7oken"
TO = "919876543210"
ROOT = Path(__file__).resolve().parent.parent
TRANSPORTS = ["default", "httpx"]


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture(params=TRANSPORTS)
async def http_client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient | None]:
    """None: the SDK's own pool (httpx over aiohttp); else a caller's plain httpx client."""
    if request.param == "default":
        yield None
    else:
        async with httpx.AsyncClient() as http:
            yield http


def _client(
    server: HostileServer, http: httpx.AsyncClient | None, **kwargs: object
) -> g.AsyncGupshupClient:
    return g.AsyncGupshupClient(
        "app",
        TOKEN,
        base_url=server.base_url,
        http_client=http,
        **kwargs,  # type: ignore[arg-type]
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# 9.2: no bound on a response body ----------------------------------------------------------


async def _measure_in_child(base_url: str, transport: str) -> dict[str, object]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.hostile_client",
        base_url,
        transport,
        "20",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0
    return dict(json.loads(out))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("mode", "error", "ambiguous"),
    [
        ("endless", "UnexpectedResponseError", True),
        ("huge-200", "UnexpectedResponseError", True),
        ("huge-500", "ServerError", True),
        ("gzip-bomb", "UnexpectedResponseError", True),
    ],
)
async def test_a_hostile_body_is_cut_at_the_cap_in_bounded_memory(
    mode: str, error: str, ambiguous: bool, transport: str
) -> None:
    async with HostileServer(mode) as server:
        measured = await _measure_in_child(server.base_url, transport)
    assert (measured["error"], measured["ambiguous"]) == (error, ambiguous), measured
    growth = measured["growth_mb"]
    assert isinstance(growth, float)
    assert growth < 20, measured


async def test_an_error_body_past_the_cap_keeps_its_status_class_and_a_cut_body(
    http_client: httpx.AsyncClient | None,
) -> None:
    async with (
        HostileServer("huge-500") as server,
        _client(server, http_client, max_response_bytes=4096, max_retries=0) as client,
    ):
        with pytest.raises(g.ServerError) as info:
            await client.send(TO, g.Text(body="hi"))
    assert info.value.status_code == 500
    assert info.value.ambiguous is True
    assert info.value.body == "x" * 4096


async def test_the_connection_is_dropped_past_the_cap_not_reused(
    http_client: httpx.AsyncClient | None,
) -> None:
    """Cut bodies must not leave the rest of the stream to be read as the next answer."""
    async with HostileServer("huge-200") as server, _client(server, http_client) as client:
        for _ in range(2):
            with pytest.raises(g.UnexpectedResponseError):
                await client.send(TO, g.Text(body="hi"))
        assert server.requests == 2
        assert server.connections == 2


@pytest.mark.parametrize("mode", ["gzip-ok", "deflate-ok"])
async def test_a_compressed_answer_under_the_cap_is_read_whole(
    mode: str, http_client: httpx.AsyncClient | None
) -> None:
    async with HostileServer(mode) as server, _client(server, http_client) as client:
        result = await client.send(TO, g.Text(body="hi"))
        assert server.connections == 1
    assert result.message_id == "gs-hostile"


# 9.3: `timeout` bounds the whole attempt -------------------------------------------------


async def test_timeout_is_the_deadline_of_the_whole_attempt(
    http_client: httpx.AsyncClient | None,
) -> None:
    async with (
        HostileServer("drip", drip_every=0.2) as server,
        _client(server, http_client, timeout=1.0, max_retries=0) as client,
    ):
        started = time.monotonic()
        with pytest.raises(g.APITimeoutError) as info:
            await asyncio.wait_for(client.send(TO, g.Text(body="hi")), 10)
        elapsed = time.monotonic() - started
    assert info.value.ambiguous is True
    assert 1.0 <= elapsed < 1.5
    assert TOKEN not in str(info.value)


async def test_cancelling_a_bulk_run_against_a_drip_returns_within_timeout_plus_one_second() -> (
    None
):
    seen: list[g.Outcome] = []
    async with (
        HostileServer("drip", drip_every=0.2) as server,
        _client(server, None, timeout=1.0) as client,
    ):
        sender = g.BulkSender(client, rate=None, concurrency=4, on_result=seen.append)
        run = asyncio.create_task(
            sender.send([f"9198765432{i:02d}" for i in range(20)], g.Text(body="hi"))
        )
        await asyncio.sleep(0.3)  # four requests are dripping
        started = time.monotonic()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(run), 10)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 1.0
    assert [o.status for o in seen] == ["ambiguous"] * 4  # on the wire: may have been sent


# 9.4: hostile JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "error", "ambiguous"),
    [("deep-200", g.UnexpectedResponseError, True), ("deep-400", g.BadRequestError, False)],
)
async def test_deeply_nested_json_is_a_gupshup_error(
    mode: str, error: type[g.APIError], ambiguous: bool, http_client: httpx.AsyncClient | None
) -> None:
    async with HostileServer(mode) as server, _client(server, http_client) as client:
        with pytest.raises(error) as info:
            await client.send(TO, g.Text(body="hi"))
    assert type(info.value) is error
    assert info.value.ambiguous is ambiguous


async def test_deeply_nested_json_fails_one_recipient_not_the_bulk_run() -> None:
    async with HostileServer("deep-200") as server, _client(server, None) as client:
        results = await g.BulkSender(client, rate=None).send(
            [TO, "919876543211"], g.Text(body="hi")
        )
    assert [r["success"] for r in results] == [False, False]
    assert all("may have been" in r["error"] for r in results if not r["success"])


# 9.1: the bulk path honours the Retry-After cap ---------------------------------------------


@pytest.mark.parametrize("retry_after", ["1000000000", "Fri, 31 Dec 2100 23:59:59 GMT"])
async def test_an_absurd_retry_after_is_capped_on_the_bulk_path(retry_after: str) -> None:
    policy = g.RetryPolicy(retry_after_max=0.3)
    async with (
        HostileServer("retry-after", retry_after=retry_after, throttle_first=2) as server,
        _client(server, None, retry_policy=policy) as client,
    ):
        sender = g.BulkSender(client, rate=100, concurrency=2)
        started = time.monotonic()
        results = await asyncio.wait_for(sender.send([TO, "919876543211"], g.Text(body="hi")), 10)
        elapsed = time.monotonic() - started
    assert [r["success"] for r in results] == [True, True]
    assert server.requests == 4
    assert elapsed < 3.0


# 9.6: no token in captured frame locals -------------------------------------------------------


def _report_with_locals(error: BaseException) -> str:
    """What an error reporter capturing locals (as Sentry does) would print, whole chain."""
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


@pytest.mark.parametrize(
    ("mode", "error", "ambiguous"),
    [
        ("refused", g.APIConnectionError, False),
        ("silent", g.APITimeoutError, True),
        ("drop", g.APIConnectionError, True),
        ("status-400", g.BadRequestError, False),
        ("status-500", g.ServerError, True),
    ],
)
async def test_no_token_in_captured_frame_locals(
    mode: str,
    error: type[g.GupshupError],
    ambiguous: bool,
    http_client: httpx.AsyncClient | None,
) -> None:
    async with HostileServer(mode) as server:
        base_url = f"http://127.0.0.1:{_closed_port()}" if mode == "refused" else server.base_url
        async with g.AsyncGupshupClient(
            "app", TOKEN, base_url=base_url, http_client=http_client, timeout=0.5, max_retries=0
        ) as client:
            with pytest.raises(error) as info:
                await client.send(TO, g.Text(body="hi"))
    assert type(info.value) is error
    assert info.value.ambiguous is ambiguous
    report = _report_with_locals(info.value)
    assert "Traceback" in report
    assert TOKEN not in report
    if mode in ("refused", "drop"):  # the cause stays, for what it says (without its frames)
        cause = info.value.__cause__
        assert isinstance(cause, httpx.TransportError if http_client else aiohttp.ClientError)


# 9.8: a client used from a second event loop --------------------------------------------------


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


def test_a_second_event_loop_is_refused_before_any_byte(threaded_server: HostileServer) -> None:
    client = g.AsyncGupshupClient("app", TOKEN, base_url=threaded_server.base_url)

    async def send() -> g.SendResult:
        return await client.send(TO, g.Text(body="hi"))

    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(send()).message_id == "gs-hostile"
        with pytest.raises(RuntimeError, match="event loop") as info:
            asyncio.run(send())
        assert "nothing was sent" in str(info.value)
        assert threaded_server.requests == 1
    finally:
        first.run_until_complete(client.aclose())
        first.close()
