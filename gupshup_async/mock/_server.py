"""Ways to run the mock: a loopback uvicorn server in a thread, or an in-process transport."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx

from ._app import ConnectionDroppedError, MockGupshupApp
from ._delivery import DeliveryPlan, WebhookDispatcher
from ._faults import FaultPlan
from ._recorder import Recorder

DEFAULT_TOKEN = "mock-token"
DEFAULT_APP_ID = "mock-app"
#: Server keep-alive, well above the client's keep-alive expiry (4 s), so the client never
#: reuses a socket the server is closing (the race shows up as stray errors under load).
KEEPALIVE_TIMEOUT = 30
_STARTUP_TIMEOUT = 10.0


class _InProcessTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionDroppedError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc


def mock_transport(app: MockGupshupApp) -> httpx.AsyncBaseTransport:
    """An httpx transport that calls the mock in-process; a dropped connection is a ReadError."""
    return _InProcessTransport(app=app)


def uvicorn_config(app: MockGupshupApp, **overrides: Any) -> Any:
    """The uvicorn settings the mock is served with: httptools, no access log, long keep-alive."""
    import uvicorn

    settings: dict[str, Any] = {
        "http": "httptools",
        "lifespan": "off",
        "access_log": False,
        "log_level": "warning",
        "timeout_keep_alive": KEEPALIVE_TIMEOUT,
        "backlog": 4096,
    }
    settings.update(overrides)
    return uvicorn.Config(app, **settings)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class MockGupshupServer:
    """The mock on a real loopback port, served by uvicorn in a background thread.

    `async with MockGupshupServer(rate=80) as mock:` then point a client at `mock.base_url`
    with `mock.app_id` and `mock.token`. `start()`/`stop()` do the same from sync code.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        app_id: str = DEFAULT_APP_ID,
        rate: float | None = None,
        burst: float | None = None,
        throttle_shape: str = "gupshup",
        faults: FaultPlan | None = None,
        keep_messages: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_url: str | None = None,
        webhook_headers: dict[str, str] | None = None,
        delivery: DeliveryPlan | None = None,
    ) -> None:
        self.token = token
        self.webhooks = (
            WebhookDispatcher(
                delivery or DeliveryPlan(), webhook_url, headers=webhook_headers, app_id=app_id
            )
            if webhook_url is not None
            else None
        )
        self.app_id = app_id
        self.recorder = Recorder(keep_messages=keep_messages)
        self.app = MockGupshupApp(
            token=token,
            app_id=app_id,
            rate=rate,
            burst=burst,
            throttle_shape=throttle_shape,
            faults=faults,
            recorder=self.recorder,
            delivery=self.webhooks,
        )
        self._host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`, the value for the client's `base_url`."""
        return f"http://{self._host}:{self._port}"

    def start(self) -> None:
        """Bind the port and serve in a thread; return once it accepts connections."""
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn_config(self.app))
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="gupshup-mock", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError("the mock server failed to start") from self._error
            if time.monotonic() > deadline:
                raise RuntimeError("the mock server did not start in time")
            time.sleep(0.005)

    def _serve(self, sock: socket.socket) -> None:
        loop = self._loop = _new_loop()
        try:
            loop.run_until_complete(self._server.serve(sockets=[sock]))
            if self.webhooks is not None:
                loop.run_until_complete(self.webhooks.aclose())
        except BaseException as exc:  # reported to start()/stop(), not lost in a thread
            self._error = exc
        finally:
            loop.close()
            sock.close()

    def in_server_loop(self, work: Any, timeout: float) -> Any:
        """Run coroutine `work` in the server's event loop (webhooks live there); wait for it."""
        assert self._loop is not None, "the mock server is not running"
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    def wait_for_webhooks(self, timeout: float = 30.0) -> int:
        """Block until every status webhook was acknowledged or given up on, or `timeout`
        seconds passed; returns how many deliveries are still under way (0: all done)."""
        assert self.webhooks is not None, "the mock was started without webhook_url"
        webhooks = self.webhooks
        with contextlib.suppress(concurrent.futures.TimeoutError):  # TimeoutError from 3.11
            self.in_server_loop(webhooks.idle(), timeout)
        return webhooks.pending

    def send_inbound(self, sender: str, text: str, *, name: str = "Mock User") -> str:
        """Post an inbound text message from `sender` to the webhook; returns its wamid."""
        assert self.webhooks is not None, "the mock was started without webhook_url"
        webhooks = self.webhooks

        async def post() -> str:
            return webhooks.inbound(sender, text, name=name)

        return str(self.in_server_loop(post(), 10.0))

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_STARTUP_TIMEOUT)
            self._thread = None

    async def __aenter__(self) -> MockGupshupServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
