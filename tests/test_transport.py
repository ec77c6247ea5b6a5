"""What the transport's errors mean: decided from aiohttp's cause, not httpx's class."""

from __future__ import annotations

import socket

import aiohttp
import httpx
import pytest

import gupshup_async as g
from gupshup_async._transport import classify_transport_error

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
    assert isinstance(info.value.__cause__, httpx.TransportError)
    assert len(waits) == 2
