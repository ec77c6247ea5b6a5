"""How the shared `httpx.AsyncClient` is built, and what its transport errors really mean.

httpx's own pool (httpcore) collapses under bulk concurrency on this class of machine (measured:
~640 msg/s at concurrency 64, ~135 at 256), so the default client runs over
`httpx_aiohttp.AiohttpTransport`: aiohttp does the I/O, the httpx API stays.

That transport maps every `aiohttp.ClientConnectionError` to `httpx.ConnectTimeout`, including a
connection dropped after the request was written. `classify_transport_error` therefore decides
from the aiohttp exception kept on `__cause__`, never from the httpx class alone.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from ._errors import APIConnectionError, APITimeoutError

#: Connections kept to the API; sized above the bulk sender's default concurrency.
DEFAULT_MAX_CONNECTIONS = 512
#: Idle keep-alive connections are closed after this many seconds, below common server
#: keep-alive timeouts (the mock uses 30 s) so the client never reuses a socket being closed.
KEEPALIVE_EXPIRY = 4.0


def create_transport(*, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> httpx.AsyncBaseTransport:
    """The default transport: aiohttp's connection pool, as large as `max_connections`."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    return AiohttpTransport(limits=limits, trust_env=False)


def create_http_client(
    *, timeout: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The default shared client around `transport` (by default `create_transport()`)."""
    return httpx.AsyncClient(
        transport=transport or create_transport(),
        timeout=httpx.Timeout(timeout),
        trust_env=False,
    )


def classify_transport_error(exc: httpx.TransportError) -> APIConnectionError:
    """Turn an httpx transport error into ours, deciding whether it may have delivered.

    Only a failed or timed-out connect (or waiting for a pooled connection) proves that the
    request never left; everything else after the request started is ambiguous.
    """
    cause = exc.__cause__
    text = str(exc) or type(exc).__name__
    if isinstance(cause, aiohttp.ClientError):
        if isinstance(cause, aiohttp.ClientConnectorError):
            return APIConnectionError(f"connection failed: {text}", ambiguous=False)
        if isinstance(cause, aiohttp.ConnectionTimeoutError):
            return APITimeoutError(f"connect timed out: {text}", ambiguous=False)
        if isinstance(cause, aiohttp.ServerTimeoutError):
            return APITimeoutError(f"read timed out: {text}", ambiguous=True)
        return APIConnectionError(f"connection lost: {text}", ambiguous=True)
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return APITimeoutError(f"connect timed out: {text}", ambiguous=False)
    if isinstance(exc, httpx.ConnectError):
        return APIConnectionError(f"connection failed: {text}", ambiguous=False)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"timed out: {text}", ambiguous=True)
    return APIConnectionError(f"connection lost: {text}", ambiguous=True)
