"""The mock's partner endpoints: login, app token, media upload, read receipts.

Written from NOTES.md ("Endpoint and auth"), sharing no code with the SDK: its own multipart
reader, its own media limits, its own 10-a-minute window for the token endpoints. Every call
is counted in `calls` (by route) so tests can assert exact numbers.
"""

from __future__ import annotations

import collections
import itertools
import json
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Respond = Callable[[Send, int, dict[str, Any]], Awaitable[None]]

MEDIA_CAP = 100 * 1024 * 1024
_KB = 1024
_MB = 1024 * _KB
#: Meta's media limits, written out again here on purpose (not imported from the SDK).
_MEDIA: dict[str, int] = {
    **dict.fromkeys(("image/jpeg", "image/png"), 5 * _MB),
    **dict.fromkeys(("video/mp4", "video/3gpp"), 16 * _MB),
    **dict.fromkeys(("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"), 16 * _MB),
    **dict.fromkeys(
        (
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        100 * _MB,
    ),
    "image/webp": 500 * _KB,
}
_TOKEN_WINDOW = 60.0
_TOKEN_CALLS = 10


class PartnerRoutes:
    """The partner endpoints of one mock app; `app` is the `MockGupshupApp` whose token rules.

    `email`/`password` log in; `partner_token` is what login hands out (a new one after
    `expire_partner_token()`); `rotate_app_token()` makes the app's current token fail with 401.
    """

    def __init__(
        self,
        app: Any,
        *,
        email: str = "partner@example.com",
        password: str = "mock-password",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.email = email
        self.password = password
        self.partner_token = "pt-" + secrets.token_hex(8)
        self.calls: collections.Counter[str] = collections.Counter()
        self.uploads: dict[str, tuple[str, str, bytes]] = {}
        self.read_events: list[dict[str, Any]] = []
        self._clock = clock
        self._window: collections.deque[float] = collections.deque()
        self._media_ids = itertools.count(1)

    def handles(self, method: str, path: str) -> bool:
        """True for a path this module answers."""
        if method == "POST" and path == "/partner/account/login":
            return True
        parts = path.strip("/").split("/")
        return (
            len(parts) >= 4
            and parts[:2] == ["partner", "app"]
            and (
                (method == "GET" and parts[3:] == ["token"])
                or (method == "POST" and parts[3:] in (["media"], ["v1", "event"]))
            )
        )

    def rotate_app_token(self) -> str:
        """Give the app a new token; the old one is now refused with 401."""
        self.app.token = "sk_" + secrets.token_hex(12)
        return str(self.app.token)

    def expire_partner_token(self) -> None:
        """The partner token expires: the next use is refused with 401."""
        self.partner_token = "pt-" + secrets.token_hex(8)

    async def handle(
        self, scope: Scope, body: bytes, send: Send, respond: Respond, header: Callable[..., Any]
    ) -> None:
        path: str = scope["path"]
        if path == "/partner/account/login":
            self.calls["login"] += 1
            await self._login(body, scope, send, respond, header)
            return
        parts = path.strip("/").split("/")
        app_id, route = parts[2], "/".join(parts[3:])
        self.calls[route] += 1
        if self.app.app_id is not None and app_id != self.app.app_id:
            await respond(send, 400, {"status": "error", "message": "Invalid App Details"})
        elif route == "token":
            await self._app_token(scope, send, respond, header)
        elif header(scope, b"authorization") != str(self.app.token).encode():
            await respond(send, 401, {"status": "error", "message": "Authentication Failed"})
        elif route == "media":
            await self._media(scope, body, send, respond, header)
        else:
            await self._read_event(body, send, respond)

    def _over_rate(self) -> bool:
        now = self._clock()
        while self._window and now - self._window[0] >= _TOKEN_WINDOW:
            self._window.popleft()
        if len(self._window) >= _TOKEN_CALLS:
            return True
        self._window.append(now)
        return False

    async def _login(
        self, body: bytes, scope: Scope, send: Send, respond: Respond, header: Callable[..., Any]
    ) -> None:
        content_type = header(scope, b"content-type") or b""
        if not content_type.startswith(b"application/x-www-form-urlencoded"):
            await respond(send, 400, {"status": "error", "message": "form fields expected"})
            return
        if self._over_rate():
            await respond(send, 429, {"status": "error", "message": "Too Many Requests"})
            return
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("email") != self.email or form.get("password") != self.password:
            await respond(send, 401, {"status": "error", "message": "Invalid credentials"})
            return
        await respond(send, 200, {"token": self.partner_token})

    async def _app_token(
        self, scope: Scope, send: Send, respond: Respond, header: Callable[..., Any]
    ) -> None:
        if self._over_rate():
            await respond(send, 429, {"status": "error", "message": "Too Many Requests"})
            return
        if header(scope, b"authorization") != self.partner_token.encode():
            await respond(send, 401, {"status": "error", "message": "Authentication Failed"})
            return
        token = {"token": str(self.app.token), "authoriserId": "mock", "expiresOn": 0}
        await respond(send, 200, {"status": "success", "token": token})

    async def _media(
        self, scope: Scope, body: bytes, send: Send, respond: Respond, header: Callable[..., Any]
    ) -> None:
        content_type = (header(scope, b"content-type") or b"").decode("latin-1")
        fields = _multipart(content_type, body)
        if fields is None:
            await respond(send, 400, {"status": "error", "message": "multipart body expected"})
            return
        file_type = fields.get("file_type")
        upload = fields.get("file")
        problem = _media_problem(file_type, upload)
        if problem is not None:
            await respond(send, 400, {"status": "error", "message": problem})
            return
        assert file_type is not None
        assert upload is not None
        media_id = f"mock-media-{next(self._media_ids)}"
        self.uploads[media_id] = (file_type[0], upload[0], upload[1])
        await respond(send, 200, {"mediaId": media_id, "status": "success"})

    async def _read_event(self, body: bytes, send: Send, respond: Respond) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            await respond(send, 400, {"status": "error", "message": "Invalid JSON body"})
            return
        message = event.get("message") if isinstance(event, dict) else None
        good = (
            isinstance(message, dict)
            and event.get("type") == "message-event"
            and message.get("messaging_product") == "whatsapp"
            and message.get("status") == "read"
            and isinstance(message.get("message_id"), str)
            and bool(message["message_id"])
            and set(message) <= {"messaging_product", "status", "message_id", "typing_indicator"}
            and message.get("typing_indicator", {"type": "text"}) == {"type": "text"}
        )
        if not good:
            await respond(send, 400, {"status": "error", "message": "invalid message-event"})
            return
        self.read_events.append(event)
        await respond(send, 200, {"status": "success"})


def _media_problem(
    file_type: tuple[str, str] | None, upload: tuple[str, bytes] | None
) -> str | None:
    if file_type is None or upload is None:
        return "file_type and file are required"
    limit = _MEDIA.get(file_type[0])
    if limit is None:
        return f"file_type {file_type[0]!r} is not supported"
    size = len(upload[1])
    if size == 0:
        return "file is empty"
    if size > min(limit, MEDIA_CAP):
        return f"file of {size} bytes is past the {limit}-byte limit for {file_type[0]}"
    return None


def _multipart(content_type: str, body: bytes) -> dict[str, Any] | None:
    """Parts of a multipart/form-data body: field -> (text value, ...) or (filename, bytes)."""
    if not content_type.startswith("multipart/form-data"):
        return None
    boundary = next(
        (p.split("=", 1)[1].strip('"') for p in content_type.split(";")[1:] if "boundary=" in p),
        None,
    )
    if not boundary:
        return None
    fields: dict[str, Any] = {}
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, data = part.partition(b"\r\n\r\n")
        disposition = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for item in line.split(";")[1:]:
                    key, _, value = item.strip().partition("=")
                    disposition[key] = value.strip('"')
        name = disposition.get("name")
        if name is None:
            return None
        if "filename" in disposition:
            fields[name] = (disposition["filename"], data)
        else:
            fields[name] = (data.decode("utf-8", "replace"), b"")
    return fields
