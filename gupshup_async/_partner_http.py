"""One HTTP exchange of the partner endpoints, bounded as `send()` is.

The whole exchange runs under a deadline, the answer body is read under a cap (inflated size
counted), a transport error leaves as the SDK's `APIConnectionError` and the frames that held
the request's headers (the token) are dropped from the chain.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import httpx

from ._errors import APITimeoutError
from ._transport import DEFAULT_MAX_RESPONSE_BYTES, bounded, decode_text, read_body


class Answer(NamedTuple):
    """A partner endpoint's answer: status, body (capped), and why the body is cut, if it is."""

    status: int
    content: bytes
    problem: str | None
    content_type: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer with its whole body."""
        return 200 <= self.status < 300 and self.problem is None

    @property
    def text(self) -> str:
        """The body as text, for error messages."""
        return decode_text(self.content, self.content_type)


async def exchange(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout: float,
    limit: int = DEFAULT_MAX_RESPONSE_BYTES,
    **request: Any,
) -> Answer:
    """Send one request (`request` as for `httpx.AsyncClient.build_request`) and read the answer.

    `timeout` (seconds) is the deadline of the whole exchange: `APITimeoutError`, ambiguous.
    """
    built = http.build_request(method, url, timeout=timeout, **request)
    timed_out = f"no complete answer within {timeout:g} s from {built.url.path}"
    async with bounded(timeout, lambda: APITimeoutError(timed_out, ambiguous=True)):
        response = await http.send(built, stream=True)
        try:
            body = await read_body(response, limit)
        finally:
            await response.aclose()
    return Answer(
        response.status_code, body.content, body.problem, response.headers.get("content-type")
    )
