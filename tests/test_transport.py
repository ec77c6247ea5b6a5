"""What the transport's errors mean: decided from aiohttp's cause, not httpx's class."""

from __future__ import annotations

import logging
import socket

import aiohttp
import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

import gupshup_async as g
from gupshup_async._transport import classify_transport_error
from gupshup_async.mock import FaultPlan, MockGupshupServer
from gupshup_async.mock._faults import FAULT_KINDS

from .reference_examples import TO


def _wrapped(httpx_cls: type[httpx.TransportError], cause: BaseException) -> httpx.TransportError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise httpx_cls(str(exc)) from exc
    except httpx.TransportError as wrapped:
        return wrapped


def _connector_error() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))


@pytest.mark.parametrize(
    ("exc", "cls", "ambiguous"),
    [
        # httpx-aiohttp maps all of these to ConnectTimeout: only the cause tells them apart.
        (_wrapped(httpx.ConnectTimeout, _connector_error()), g.APIConnectionError, False),
        (_wrapped(httpx.ConnectTimeout, aiohttp.ConnectionTimeoutError()), g.APITimeoutError, False),
        (_wrapped(httpx.ConnectTimeout, aiohttp.SocketTimeoutError()), g.APITimeoutError, True),
        (_wrapped(httpx.ConnectTimeout, aiohttp.ServerDisconnectedError()), g.APIConnectionError, True),
        (_wrapped(httpx.ConnectTimeout, aiohttp.ClientOSError(104, "reset")), g.APIConnectionError, True),
        (_wrapped(httpx.ReadError, aiohttp.ClientPayloadError("cut")), g.APIConnectionError, True),
        # Other transports (httpcore, ASGI, MockTransport) are taken at their word.
        (httpx.ConnectError("refused"), g.APIConnectionError, False),
        (httpx.ConnectTimeout("slow connect"), g.APITimeoutError, False),
        (httpx.PoolTimeout("pool"), g.APITimeoutError, False),
        (httpx.ReadTimeout("slow read"), g.APITimeoutError, True),
        (httpx.WriteTimeout("slow write"), g.APITimeoutError, True),
        (httpx.ReadError("reset"), g.APIConnectionError, True),
        (httpx.RemoteProtocolError("bad"), g.APIConnectionError, True),
    ],
)  # fmt: skip
def test_classification(
    exc: httpx.TransportError, cls: type[g.GupshupError], ambiguous: bool
) -> None:
    error = classify_transport_error(exc)
    assert type(error) is cls
    assert error.ambiguous is ambiguous


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_on_the_default_transport_is_retried_and_not_ambiguous() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    policy = g.RetryPolicy(sleep=sleep, random=lambda: 0.0)
    async with g.AsyncGupshupClient(
        "app", "tok", base_url=f"http://127.0.0.1:{_closed_port()}", retry_policy=policy
    ) as client:
        with pytest.raises(g.APIConnectionError) as info:
            await client.send(TO, g.Text(body="hi"))
    assert info.value.ambiguous is False
    # The owned path goes straight onto aiohttp's pool: the cause is aiohttp's own error.
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
    assert len(waits) == 2


#: What one attempt gives for each fault the mock can inject: (error class, ambiguous, status).
EXPECTED_BY_FAULT: dict[str, tuple[str, bool | None, int | None]] = {
    "ok": ("SendResult", None, 200),
    "429": ("RateLimitError", False, 429),
    "429_meta": ("RateLimitError", False, 429),
    "429_after": ("RateLimitError", False, 429),
    "400": ("BadRequestError", False, 400),
    "500": ("ServerError", True, 500),
    "502": ("ServerError", True, 502),
    "503": ("ServerError", False, 503),
    "504": ("ServerError", True, 504),
    "html_502": ("ServerError", True, 502),
    "drop_before": ("APIConnectionError", True, None),
    "drop_after": ("APIConnectionError", True, None),
    "slow": ("APITimeoutError", True, None),
    "empty": ("UnexpectedResponseError", True, 200),
    "html_200": ("UnexpectedResponseError", True, 200),
    "truncated_json": ("UnexpectedResponseError", True, 200),
    "no_message_id": ("UnexpectedResponseError", True, 200),
}


@pytest.mark.parametrize("path", ["owned aiohttp pool", "httpx over aiohttp", "httpx default"])
async def test_every_fault_gives_the_same_error_flag_event_and_log_on_every_path(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The owned path skips httpx's objects; what a caller sees must not differ (issue 14)."""
    caplog.set_level(logging.DEBUG, logger="gupshup_async")
    assert set(EXPECTED_BY_FAULT) == FAULT_KINDS
    recipients = {kind: f"9190000{i:05d}" for i, kind in enumerate(sorted(FAULT_KINDS))}
    plan = FaultPlan(
        schedule={to: [kind] for kind, to in recipients.items()}, retry_after=7, slow_seconds=2
    )
    events: list[g.AttemptEvent] = []
    async with MockGupshupServer(faults=plan) as server:
        http = None
        if path == "httpx over aiohttp":
            http = httpx.AsyncClient(transport=AiohttpTransport())
        elif path == "httpx default":
            http = httpx.AsyncClient()
        async with g.AsyncGupshupClient(
            server.app_id,
            server.token,
            base_url=server.base_url,
            http_client=http,
            timeout=1.0,
            max_retries=0,
            on_attempt=events.append,
        ) as client:
            seen: dict[str, tuple[str, bool | None, int | None]] = {}
            retry_afters: list[float | None] = []
            for kind, to in recipients.items():
                try:
                    await client.send(to, g.Text(body="hi"))
                    seen[kind] = ("SendResult", None, 200)
                except g.GupshupError as error:
                    status = error.status_code if isinstance(error, g.APIError) else None
                    seen[kind] = (type(error).__name__, error.ambiguous, status)
                    if isinstance(error, g.RateLimitError):
                        retry_afters.append(error.retry_after)
        if http is not None:
            await http.aclose()
    assert seen == EXPECTED_BY_FAULT
    assert retry_afters == [7.0, 7.0, 7.0]
    logged = [r.getMessage() for r in caplog.records if r.name == "gupshup_async"]
    error_names = {k: None if v[0] == "SendResult" else v[0] for k, v in EXPECTED_BY_FAULT.items()}
    assert logged == [
        f"send attempt=1 to={to[:2]}{'*' * (len(to) - 4)}{to[-2:]} "
        f"status={EXPECTED_BY_FAULT[kind][2]} error={error_names[kind]} retry_in=None"
        for kind, to in recipients.items()
    ]
    assert [(e.attempt, e.status_code, e.retry_in) for e in events] == [
        (1, EXPECTED_BY_FAULT[kind][2], None) for kind in recipients
    ]
