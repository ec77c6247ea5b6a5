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

import codecs
import contextlib
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType
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


class bounded:  # noqa: N801 - used as `async with bounded(...)`, like `deadline`
    """`async with bounded(s, error)`: one exchange under one deadline, its failures as ours.

    The rule of every call to the API (send, partner calls, a media URL): a transport error,
    httpx's or aiohttp's, leaves as `classify_transport_error` says; the deadline leaves as
    `timed_out()` (an ambiguous `APITimeoutError` once the request may have been written;
    built only then, so the common path allocates no error);
    either way the frames that held the request headers (the token) are dropped, and no
    frame of this one keeps the original error (its repr holds the headers) as a local.
    """

    __slots__ = ("_deadline", "_timed_out")

    def __init__(self, seconds: float, timed_out: Callable[[], Exception]) -> None:
        self._deadline = deadline(seconds)
        self._timed_out = timed_out

    def __repr__(self) -> str:
        return "bounded()"

    async def __aenter__(self) -> None:
        await self._deadline.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._deadline.__aexit__(exc_type, exc, tb)
        except TimeoutError as expired:
            forget_frames(expired)
            raise self._timed_out() from None
        if exc is None:
            return
        error: Exception
        if isinstance(exc, httpx.TransportError | aiohttp.ClientError):
            error = classify_transport_error(exc)
        elif isinstance(exc, TimeoutError):
            error = self._timed_out()
        else:
            return
        forget_frames(exc)
        error.__cause__, error.__suppress_context__ = exc, True
        del exc, tb
        raise error


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


def decode_text(content: bytes, content_type: str | None) -> str:
    """An answer body as text, for errors: by its BOM, else its declared charset, else UTF-8.

    Never raises: an unknown charset falls back to UTF-8, undecodable bytes are replaced.
    """
    charset = "utf-8"
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip(' "'):
            charset = value.strip(' "')
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        charset = "utf-16"
    elif content.startswith(codecs.BOM_UTF8):
        charset = "utf-8-sig"
    try:
        return content.decode(charset, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


async def read_body(response: httpx.Response, limit: int) -> Body:
    """Read at most `limit` bytes of an httpx `response`'s body, inflated; stop early past it.

    The caller closes the response, which drops a connection whose body was not read to its
    end (aiohttp and httpcore both close it rather than reuse it).
    """
    chunks, encoding = raw_body(response)
    return await read_chunks(chunks, encoding, limit)


def raw_body(
    response: httpx.Response, chunk_size: int | None = None
) -> tuple[AsyncIterator[bytes], str]:
    """The raw chunks of an httpx `response`'s body and the `Content-Encoding` they are in.

    A body a transport answered from memory (`MockTransport`) is read already: it comes
    whole and decoded.
    """
    if response.is_stream_consumed:
        return _once(response.content), ""
    return response.aiter_raw(chunk_size), response.headers.get("content-encoding", "")


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


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
    problem = unsupported_encoding(encoding)
    if problem is not None:
        return Body(b"", problem)
    parts: list[bytes] = []
    size = 0
    try:
        async for piece in inflate(chunks, encoding, limit):
            size += len(piece)
            parts.append(piece)
            if size > limit:
                return Body(b"".join(parts)[:limit], f"the body is larger than {limit} bytes")
    except zlib.error:
        return Body(b"".join(parts), "the body's compression is corrupt")
    return Body(b"".join(parts), None)


def unsupported_encoding(encoding: str) -> str | None:
    """Why a body in `encoding` (a `Content-Encoding` value) cannot be read, or None."""
    encoding = encoding.strip().lower()
    if encoding in _ENCODINGS:
        return None
    return f"the body's Content-Encoding {encoding[:40]!r} is not supported"


async def inflate(chunks: AsyncIterator[bytes], encoding: str, limit: int) -> AsyncIterator[bytes]:
    """The body of raw `chunks` in `encoding`, in pieces; it stops once past `limit` bytes.

    No step inflates more than what is left below the limit plus one byte, so a bomb costs
    at most `limit` in memory. Deflate is zlib-wrapped or raw (as httpx reads it), told by
    its first two bytes. Corrupt compression raises `zlib.error`.
    """
    encoding = encoding.strip().lower()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if "gzip" in encoding else None
    head = b""  # deflate: the first bytes, until there are two to tell the wrapper by
    size = 0
    async for chunk in chunks:
        if encoding == "deflate" and inflater is None:
            head += chunk
            if len(head) < 2:
                continue
            chunk, inflater = head, zlib.decompressobj(_deflate_wbits(head))
        pieces = [chunk] if inflater is None else _inflate(inflater, chunk, limit - size)
        for piece in pieces:
            size += len(piece)
            yield piece
        if size > limit:
            return
    if head and inflater is None:
        raise zlib.error("a deflate body of one byte")


def _deflate_wbits(head: bytes) -> int:
    """zlib's window bits for a deflate body starting with `head`: wrapped (RFC 1950) or raw."""
    wrapped = head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS


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
