"""How the shared `httpx.AsyncClient` is built, how an answer is read, and what errors mean.

httpx's own pool (httpcore) collapses under bulk concurrency on this class of machine (measured:
~640 msg/s at concurrency 64, ~135 at 256), so the default client runs over
`httpx_aiohttp.AiohttpTransport`: aiohttp does the I/O, the httpx API stays.

That transport maps every `aiohttp.ClientConnectionError` to `httpx.ConnectTimeout`, including a
connection dropped after the request was written. `classify_transport_error` therefore decides
from the aiohttp exception kept on `__cause__`, never from the httpx class alone, by one table.

A hostile server must not move a bound: `read_body` reads the answer incrementally and counts
the inflated bytes (httpx-aiohttp asks aiohttp not to decompress, and httpx would inflate a
whole raw chunk at once, so the SDK inflates gzip and deflate itself, at most the cap at a
time); `deadline` bounds the whole attempt, not each read.
"""

from __future__ import annotations

import contextlib
import sys
import zlib
from collections.abc import AsyncIterator
from typing import NamedTuple

import aiohttp
import anyio
import httpx
from httpx_aiohttp import AiohttpTransport

from ._errors import APIConnectionError, APITimeoutError

if sys.version_info >= (3, 11):
    from asyncio import timeout as deadline
else:  # pragma: no cover - Python 3.10: the same, from anyio

    @contextlib.asynccontextmanager
    async def deadline(delay: float) -> AsyncIterator[None]:
        """`async with deadline(s)`: raise the builtin `TimeoutError` after `s` seconds."""
        with anyio.fail_after(delay):
            yield


#: Connections kept to the API; sized above the bulk sender's default concurrency.
DEFAULT_MAX_CONNECTIONS = 512
#: Idle keep-alive connections are closed after this many seconds, below common server
#: keep-alive timeouts (the mock uses 30 s) so the client never reuses a socket being closed.
KEEPALIVE_EXPIRY = 4.0
#: The largest answer body read, in bytes after decompression (a v3 answer is ~200 bytes).
DEFAULT_MAX_RESPONSE_BYTES = 1_048_576


def create_transport(*, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> AiohttpTransport:
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


class _Meaning(NamedTuple):
    error: type[APIConnectionError]
    ambiguous: bool
    what: str


#: What a transport error means, first match wins: aiohttp's cause (the real story behind
#: httpx-aiohttp's ConnectTimeout) before httpx's class. Only a failed connect, a connect
#: timeout or a pool timeout prove that the request never left; the rest is ambiguous.
TRANSPORT_ERRORS: tuple[tuple[type[BaseException], _Meaning], ...] = (
    (aiohttp.ClientConnectorError, _Meaning(APIConnectionError, False, "connection failed")),
    (aiohttp.ConnectionTimeoutError, _Meaning(APITimeoutError, False, "connect timed out")),
    (aiohttp.ServerTimeoutError, _Meaning(APITimeoutError, True, "read timed out")),
    (aiohttp.ClientError, _Meaning(APIConnectionError, True, "connection lost")),
    (httpx.ConnectTimeout, _Meaning(APITimeoutError, False, "connect timed out")),
    (httpx.PoolTimeout, _Meaning(APITimeoutError, False, "connect timed out")),
    (httpx.ConnectError, _Meaning(APIConnectionError, False, "connection failed")),
    (httpx.TimeoutException, _Meaning(APITimeoutError, True, "timed out")),
    (httpx.TransportError, _Meaning(APIConnectionError, True, "connection lost")),
)


def classify_transport_error(exc: httpx.TransportError | aiohttp.ClientError) -> APIConnectionError:
    """Turn a transport error (httpx's, or aiohttp's on the owned path) into ours, deciding
    whether it may have delivered."""
    cause = exc.__cause__
    subject: BaseException = cause if isinstance(cause, aiohttp.ClientError) else exc
    text = str(exc) or type(exc).__name__
    for kind, meaning in TRANSPORT_ERRORS:
        if isinstance(subject, kind):
            return meaning.error(f"{meaning.what}: {text}", ambiguous=meaning.ambiguous)
    raise AssertionError("unreachable: httpx.TransportError is the table's last row")


def forget_frames(exc: BaseException) -> None:
    """Drop the tracebacks along `exc`'s whole chain, keeping the exceptions themselves.

    The frames inside aiohttp and httpx-aiohttp hold the request headers, token included, as
    local variables; an error reporter that captures locals (Sentry) would print them. The
    chained exceptions keep their types and messages, which say what went wrong.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def aiohttp_session(transport: AiohttpTransport) -> aiohttp.ClientSession:
    """The aiohttp session inside `transport`, created on first use exactly as the transport
    itself does, so the `httpx.AsyncClient` around it still owns and closes it."""
    if not isinstance(transport.client, aiohttp.ClientSession):
        transport.client = transport.get_client()
    session: aiohttp.ClientSession = transport.client
    return session


class Body(NamedTuple):
    """An answer body read under the cap: `content` and, if it is not whole, why."""

    content: bytes
    problem: str | None


_ENCODINGS = ("", "identity", "gzip", "x-gzip", "deflate")


async def read_body(response: httpx.Response, limit: int) -> Body:
    """Read at most `limit` bytes of an httpx `response`'s body, inflated; stop early past it.

    The caller closes the response, which drops a connection whose body was not read to its
    end (aiohttp and httpcore both close it rather than reuse it).
    """
    if response.is_stream_consumed:  # a transport that answered from memory (MockTransport)
        content = response.content
        if len(content) > limit:
            return Body(content[:limit], f"the body is larger than {limit} bytes")
        return Body(content, None)
    encoding = response.headers.get("content-encoding", "")
    return await read_chunks(response.aiter_raw(), encoding, limit)


async def read_aiohttp_body(response: aiohttp.ClientResponse, limit: int) -> Body:
    """Read at most `limit` bytes of an aiohttp `response`'s body (sent without decompressing).

    A plain body whose `Content-Length` fits is read in one call (the common case: a v3 answer
    is ~200 bytes); anything else goes chunk by chunk under the cap.
    """
    encoding = response.headers.get("Content-Encoding", "")
    length = response.content_length
    if length is not None and length <= limit and encoding in ("", "identity"):
        return Body(await response.read(), None)
    return await read_chunks(response.content.iter_any(), encoding, limit)


async def read_chunks(chunks: AsyncIterator[bytes], encoding: str, limit: int) -> Body:
    """Join raw body `chunks`, inflating gzip or deflate, until the end or past `limit`."""
    encoding = encoding.strip().lower()
    if encoding not in _ENCODINGS:
        return Body(b"", f"the body's Content-Encoding {encoding[:40]!r} is not supported")
    inflater = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj((16 if "gzip" in encoding else 0) + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in chunks:
            pieces = [chunk] if inflater is None else _inflate(inflater, chunk, limit - size)
            for piece in pieces:
                size += len(piece)
                parts.append(piece)
            if size > limit:
                return Body(b"".join(parts)[:limit], f"the body is larger than {limit} bytes")
    except zlib.error:
        return Body(b"".join(parts), "the body's compression is corrupt")
    return Body(b"".join(parts), None)


def _inflate(inflater: zlib._Decompress, data: bytes, room: int) -> list[bytes]:
    """Inflate `data` in steps of at most `room + 1` bytes, stopping once past `room`."""
    out: list[bytes] = []
    while data and room >= 0:
        piece = inflater.decompress(data, room + 1)
        data = inflater.unconsumed_tail
        out.append(piece)
        room -= len(piece)
        if not piece:
            break
    return out
