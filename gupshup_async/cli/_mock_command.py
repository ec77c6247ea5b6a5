"""`gupshup-async mock`: the mock Gupshup API on a loopback port until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
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
    base_url = f"http://{args.host}:{args.port}"
    print(f"Mock Gupshup API on {base_url}  (Ctrl-C to stop)")
    print(f"  export GUPSHUP_BASE_URL={base_url}")
    print(f"  export GUPSHUP_APP_ID={app_id}")
    print(f"  export GUPSHUP_APP_TOKEN={token}")
    print(f"  stats: GET {base_url}/_mock/stats?summary=1", flush=True)
    server = uvicorn.Server(uvicorn_config(app, host=args.host, port=args.port, loop="uvloop"))
    # uvicorn shuts down gracefully, then re-raises the captured Ctrl-C: that is our stop.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    print("Mock stopped.")
    return 0
