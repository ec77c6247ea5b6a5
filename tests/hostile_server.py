"""A hostile HTTP/1.1 server on loopback, in raw asyncio: one way to misbehave per mode.

It shares no code with the SDK or its mock: it reads a request by hand (head, then
`Content-Length` bytes) and answers as the mode says. `requests` counts the requests read
whole, so a test knows whether a request reached it.

Modes:
    endless           200, chunked, never ends
    huge-200 / -500   `Content-Length: 2000000000`, then bytes until the client gives up
    gzip-bomb         200, `Content-Encoding: gzip`: 0.6 MB that inflates to 600 MB of zeros
    drip              200 with a 100-byte body, one byte every `drip_every` seconds
    deep-200 / -400   a JSON array nested 10 000 deep
    retry-after       429 with `Retry-After: <retry_after>` (seconds, or an HTTP date), then,
                      after `throttle_first` such answers, 200 success
    drop              read the request, close the connection without a word
    silent            read the request, never answer
    status-NNN        status NNN with a short Gupshup error body
    ok                200 success
    gzip-ok / deflate-ok  200 success, compressed (not hostile: what a proxy may do)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import zlib
from types import TracebackType

SUCCESS = json.dumps(
    {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "919876543210", "wa_id": "919876543210"}],
        "messages": [{"id": "gs-hostile"}],
    }
).encode()

DEEP_JSON = b"[" * 10_000 + b"]" * 10_000
BOMB_INFLATED_BYTES = 600 * 1024 * 1024
_bomb: bytes | None = None


def gzip_bomb() -> bytes:
    """600 MB of zeros, gzipped (~0.6 MB); built once in milliseconds.

    One megabyte of zeros is deflated once with a full flush (no reference crosses it), and
    that block is repeated: still one valid gzip member, with the CRC and size of the whole.
    """
    global _bomb
    if _bomb is None:
        block = bytes(1024 * 1024)
        count = BOMB_INFLATED_BYTES // len(block)
        packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        deflated = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
        crc = 0
        for _ in range(count):
            crc = zlib.crc32(block, crc)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        trailer = struct.pack("<II", crc, BOMB_INFLATED_BYTES & 0xFFFFFFFF)
        _bomb = header + deflated * count + packer.flush() + trailer
    return _bomb


class HostileServer:
    """`async with HostileServer("drip") as server:` then send to `server.base_url`."""

    def __init__(
        self,
        mode: str,
        *,
        retry_after: str = "1000000000",
        throttle_first: int = 1_000_000,
        drip_every: float = 0.5,
    ) -> None:
        self.mode = mode
        self.retry_after = retry_after
        self.throttle_first = throttle_first
        self.drip_every = drip_every
        self.requests = 0
        self.connections = 0
        self.headers_seen: list[dict[str, str]] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> HostileServer:
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
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            while await self._read_request(reader):
                self.requests += 1
                if not await self._answer(writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # the server is closing: end quietly, not as an error
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return False
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        self.headers_seen.append(headers)
        await reader.readexactly(int(headers.get("content-length", "0")))
        return True

    async def _answer(self, writer: asyncio.StreamWriter) -> bool:
        """Answer one request as the mode says; False closes the connection."""
        mode = self.mode
        if mode == "ok":
            writer.write(_head(200, len(SUCCESS)) + SUCCESS)
        elif mode in ("gzip-ok", "deflate-ok"):
            gzip = mode == "gzip-ok"
            packer = zlib.compressobj(6, zlib.DEFLATED, (16 if gzip else 0) + zlib.MAX_WBITS)
            body = packer.compress(SUCCESS) + packer.flush()
            encoding = "gzip" if gzip else "deflate"
            writer.write(_head(200, len(body), f"Content-Encoding: {encoding}\r\n") + body)
        elif mode == "drop":
            return False
        elif mode == "silent":
            await asyncio.Event().wait()
        elif mode.startswith("status-"):
            body = b'{"status":"error","message":"Hostile says no"}'
            writer.write(_head(int(mode[len("status-") :]), len(body)) + body)
        elif mode == "retry-after":
            if self.requests <= self.throttle_first:
                body = b'{"status":"error","message":"Too Many Requests"}'
                extra = f"Retry-After: {self.retry_after}\r\n"
                writer.write(_head(429, len(body), extra) + body)
            else:
                writer.write(_head(200, len(SUCCESS)) + SUCCESS)
        elif mode in ("deep-200", "deep-400"):
            status = 200 if mode == "deep-200" else 400
            writer.write(_head(status, len(DEEP_JSON)) + DEEP_JSON)
        elif mode == "gzip-bomb":
            bomb = gzip_bomb()
            writer.write(_head(200, len(bomb), "Content-Encoding: gzip\r\n"))
            for start in range(0, len(bomb), 65536):
                writer.write(bomb[start : start + 65536])
                await writer.drain()
        elif mode == "endless":
            writer.write(_head(200, None, "Transfer-Encoding: chunked\r\n"))
            chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
            while True:
                writer.write(chunk)
                await writer.drain()
        elif mode in ("huge-200", "huge-500"):
            status = 200 if mode == "huge-200" else 500
            writer.write(_head(status, 2_000_000_000))
            block = b"x" * 65536
            while True:
                writer.write(block)
                await writer.drain()
        elif mode == "drip":
            writer.write(_head(200, 100))
            await writer.drain()
            for _ in range(100):
                await asyncio.sleep(self.drip_every)
                writer.write(b" ")
                await writer.drain()
        else:
            raise ValueError(f"unknown hostile mode {mode!r}")
        await writer.drain()
        return True


def _head(status: int, length: int | None, extra: str = "") -> bytes:
    size = "" if length is None else f"Content-Length: {length}\r\n"
    return (
        f"HTTP/1.1 {status} Hostile\r\nContent-Type: application/json\r\n{size}{extra}\r\n"
    ).encode()
