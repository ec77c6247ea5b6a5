"""`gupshup-async mock`: the mock Gupshup API on a loopback port until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import errno
import socket
import sys

from ..mock import DEFAULT_APP_ID, DEFAULT_TOKEN, FaultPlan, MockGupshupApp


def parse_faults(specs: list[str]) -> dict[str, float]:
    """`["429=0.05", "500=0.01"]` -> `{"429": 0.05, "500": 0.01}`."""
    rates: dict[str, float] = {}
    for spec in specs:
        kind, _, probability = spec.partition("=")
        try:
            rates[kind.strip()] = float(probability)
        except ValueError:
            raise ValueError(
                f"--fault {spec!r}: expected KIND=PROBABILITY, e.g. 429=0.05"
            ) from None
    return rates


_BACKLOG = 4096


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port), as uvicorn would make it; raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)  # connections queue from now on, before uvicorn accepts them
    except BaseException:
        sock.close()
        raise
    return sock


def serve_mock(args: argparse.Namespace) -> int:
    """Serve until interrupted; print the base URL and the token to use first."""
    try:
        import uvicorn
    except ImportError:
        print(
            "gupshup-async: error: the mock needs uvicorn: pip install 'gupshup-async[mock]'",
            file=sys.stderr,
        )
        return 2
    from ..mock._server import uvicorn_config

    retry_after: float | str | None = args.retry_after
    if retry_after is not None and retry_after != "date":
        retry_after = float(retry_after)
    try:
        plan = FaultPlan(
            seed=args.seed,
            rates=parse_faults(args.fault),
            latency=args.latency,
            slow_seconds=args.slow_seconds,
            retry_after=retry_after,
        )
    except ValueError as problem:
        print(f"gupshup-async: error: {problem}", file=sys.stderr)
        return 2
    token = args.token or DEFAULT_TOKEN
    app_id = args.app_id or DEFAULT_APP_ID
    app = MockGupshupApp(token=token, app_id=app_id, rate=args.rate, burst=args.burst, faults=plan)
    app.recorder.keep_messages = False
    # Bind first: the banner only ever names a port that is really being served.
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        print(f"gupshup-async: error: cannot serve on {args.host}:{args.port}: {reason}",
              file=sys.stderr)  # fmt: skip
        return 2
    port = sock.getsockname()[1]
    base_url = f"http://{args.host}:{port}"
    print(f"Mock Gupshup API on {base_url}  (Ctrl-C to stop)")
    print(f"  export GUPSHUP_BASE_URL={base_url}")
    print(f"  export GUPSHUP_APP_ID={app_id}")
    print(f"  export GUPSHUP_APP_TOKEN={token}")
    print(f"  stats: GET {base_url}/_mock/stats?summary=1", flush=True)
    server = uvicorn.Server(uvicorn_config(app, host=args.host, port=port, loop="uvloop"))
    # uvicorn shuts down gracefully, then re-raises the captured Ctrl-C: that is our stop.
    with sock, contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    print("Mock stopped.")
    return 0
