"""Media uploads: Meta's type and size limits checked first, then one streamed multipart POST.

The source is a path, bytes, or an http(s) URL whose body is fetched into a temporary file
(counted as it arrives, abandoned past the limit). The file is read in chunks in a worker
thread, so a 100 MB upload never sits in memory or blocks the event loop.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable
from typing import IO

import httpx

from ._errors import APIConnectionError, UnexpectedResponseError, error_from_response, json_object
from ._partner_http import exchange
from ._settings import check_timeout
from ._transport import bounded, inflate, raw_body, unsupported_encoding

MEDIA_MAX_BYTES = 100 * 1024 * 1024
#: Seconds a whole upload may take, fetching a URL source included (100 MB on a slow uplink
#: takes minutes).
UPLOAD_TIMEOUT = 600.0

_MB = 1024 * 1024
#: Meta's media types and size limits per kind (images 5 MB, video and audio 16 MB, documents
#: 100 MB, stickers 500 KB animated / 100 KB static: a static one cannot be told apart here).
MEDIA_LIMITS: dict[str, int] = {
    "image/jpeg": 5 * _MB,
    "image/png": 5 * _MB,
    "video/mp4": 16 * _MB,
    "video/3gpp": 16 * _MB,
    "audio/aac": 16 * _MB,
    "audio/amr": 16 * _MB,
    "audio/mpeg": 16 * _MB,
    "audio/mp4": 16 * _MB,
    "audio/ogg": 16 * _MB,
    "text/plain": 100 * _MB,
    "application/pdf": 100 * _MB,
    "application/msword": 100 * _MB,
    "application/vnd.ms-excel": 100 * _MB,
    "application/vnd.ms-powerpoint": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": 100 * _MB,
    "image/webp": 500 * 1024,
}
_CHUNK = 64 * 1024

MediaSource = str | os.PathLike[str] | bytes


def check_media(mime_type: str, size: int | None) -> None:
    """Refuse a MIME type Meta does not take, or a size past its limit for that kind."""
    limit = MEDIA_LIMITS.get(mime_type)
    if limit is not None:
        limit = min(limit, MEDIA_MAX_BYTES)
    if limit is None:
        raise ValueError(
            f"mime_type {mime_type!r} is not one Meta accepts: {', '.join(sorted(MEDIA_LIMITS))}"
        )
    if size is not None and size > limit:
        raise ValueError(
            f"media of {size} bytes is past Meta's limit of {limit} bytes for {mime_type}"
        )
    if size == 0:
        raise ValueError("media is empty (0 bytes)")


async def upload_media(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    source: MediaSource,
    mime_type: str,
    *,
    timeout: float,
) -> str:
    """Upload `source` (a path, bytes, or an http(s) URL fetched first) and return its media id.

    Size and type are checked before any byte goes to Gupshup; a URL's body is counted while
    it streams into a temporary file and abandoned past the limit. `timeout` is one deadline
    for all of it: the URL's fetch gets it, the post what is left.
    """
    timeout = check_timeout(timeout)
    check_media(mime_type, None)
    loop = asyncio.get_running_loop()
    ends = loop.time() + timeout

    def left() -> float:
        return ends - loop.time()

    if isinstance(source, bytes):
        check_media(mime_type, len(source))
        return await _post_media(http, url, headers, source, "media", mime_type, left)
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        with tempfile.TemporaryFile() as spool:
            await _download(http, source, spool, MEDIA_LIMITS[mime_type], timeout)
            name = source.rsplit("/", 1)[-1].split("?", 1)[0] or "media"
            return await _post_media(http, url, headers, spool, name, mime_type, left)
    if not isinstance(source, str | os.PathLike):
        raise ValueError(
            f"source must be a path, bytes or an http(s) URL, not {type(source).__name__}"
        )
    path = os.fspath(source)
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise ValueError(f"source: cannot read {path!r}: {exc.strerror}") from None
    check_media(mime_type, size)
    opening: asyncio.Future[IO[bytes]] = asyncio.ensure_future(asyncio.to_thread(open, path, "rb"))
    try:
        handle = await asyncio.shield(opening)
    except asyncio.CancelledError:  # the thread still opens it: close it once it has
        opening.add_done_callback(_close_opened)
        raise
    try:
        name = os.path.basename(path)
        return await _post_media(http, url, headers, handle, name, mime_type, left)
    finally:
        handle.close()


def _close_opened(opening: asyncio.Future[IO[bytes]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


async def _download(
    http: httpx.AsyncClient, source: str, spool: IO[bytes], limit: int, timeout: float
) -> None:
    """Fetch `source` into `spool` within `timeout`.

    A URL that is slow, refused or cut off is bad input, not a failure of the API: nothing
    was uploaded and no message sent, so it is a `ValueError` naming the source (never an
    ambiguous `APIConnectionError`, which a campaign would read as the API being down).
    """
    timed_out = f"source: the media URL did not arrive within {timeout:g} s"
    try:
        async with bounded(timeout, lambda: ValueError(timed_out)):
            await _fetch(http, source, spool, limit, timeout)
    except APIConnectionError as failed:
        raise ValueError(
            f"source: the media URL could not be fetched ({failed}); nothing was uploaded"
        ) from failed


async def _fetch(
    http: httpx.AsyncClient, source: str, spool: IO[bytes], limit: int, timeout: float
) -> None:
    async with http.stream("GET", source, timeout=timeout) as response:
        if not 200 <= response.status_code < 300:
            raise ValueError(f"source: fetching the media URL answered {response.status_code}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ValueError(f"source: the media URL declares {declared} bytes, past {limit}")
        chunks, encoding = raw_body(response, _CHUNK)
        unsupported = unsupported_encoding(encoding)
        if unsupported is not None:
            raise ValueError(f"source: {unsupported}")
        received = 0
        try:  # inflated here under the cap: httpx would inflate a whole raw chunk at once
            async for piece in inflate(chunks, encoding, limit):
                received += len(piece)
                if received > limit:
                    raise ValueError(f"source: the media URL sent more than {limit} bytes")
                spool.write(piece)
        except zlib.error:
            raise ValueError("source: the media URL's compression is corrupt") from None
    if received == 0:
        raise ValueError("source: the media URL sent no bytes")
    spool.seek(0)


async def _post_media(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    content: bytes | IO[bytes],
    name: str,
    mime_type: str,
    left: Callable[[], float],
) -> str:
    """Post `content` as one multipart file within `left()` seconds; return its media id."""
    boundary = secrets.token_hex(16)
    quoted = name.replace("\\", "_").replace('"', "%22").replace("\r", "").replace("\n", "")
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file_type"\r\n\r\n'
        f"{mime_type}\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        f"Content-Type: {mime_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    if isinstance(content, bytes):
        size = len(content)
    else:
        size = os.fstat(content.fileno()).st_size - content.tell()

    async def multipart() -> AsyncIterator[bytes]:
        yield head
        if isinstance(content, bytes):
            view = memoryview(content)  # chunks, so no layer below copies the whole body
            for start in range(0, size, _CHUNK):
                yield bytes(view[start : start + _CHUNK])
        else:
            while chunk := await asyncio.to_thread(content.read, _CHUNK):
                yield chunk
        yield tail

    response = await exchange(
        http,
        "POST",
        url,
        headers={
            **headers,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        },
        content=multipart(),
        timeout=left(),
    )
    if not 200 <= response.status < 300:
        raise error_from_response(response.status, response.text)
    data = json_object(response.content)
    media_id = data.get("mediaId") if data is not None else None
    if not isinstance(media_id, str) or not media_id:
        raise UnexpectedResponseError(
            "media upload answer without a mediaId",
            status_code=response.status,
            body=response.text[:500],
            ambiguous=True,
        )
    return media_id
