"""Webhook ingestion: events per second stored durably by `webhooks serve`, and ack latency.

The receiver runs as a user runs it (`gupshup-async webhooks serve --journal J --secret-env`)
in its own process pinned to one core; a raw aiohttp client on the other core posts one status
event per request (as Gupshup does) at a fixed concurrency, timing each answer. After the run
the journal is counted: every acknowledged event must be in it, once.

    python -m benchmarks.webhooks            # 20 000 events, concurrency 64 (about a minute)
    python -m benchmarks.webhooks --quick    # 3 000 events, prints only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._harness import CLIENT_CORE, MOCK_CORE, RESULTS, can_pin, free_port, pinned

SECRET = "bench-secret"


def _event(n: int) -> bytes:
    status = {"gs_id": f"gs-bench-{n:09d}", "id": f"wamid.BENCH{n:09d}",
              "recipient_id": "9191****873", "status": ("sent", "delivered", "read")[n % 3],
              "timestamp": 1710941393420 + n}  # fmt: skip
    value = {"messaging_product": "whatsapp", "statuses": [status]}
    body = {
        "entry": [{"changes": [{"field": "messages", "value": value}], "id": "112535025189792"}],
        "gs_app_id": "82ed52f4-30c0-4f12-81b4-e7ad07bd41de",
        "object": "whatsapp_business_account",
    }
    return json.dumps(body).encode()


async def _post_all(
    url: str, total: int, concurrency: int, first: int = 0
) -> tuple[float, list[float], int]:
    import aiohttp

    latencies: list[float] = []
    failures = 0
    queue = iter(range(first, first + total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"X-Webhook-Secret": SECRET, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures
            for n in queue:
                body = _event(n)
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 200:
                        failures += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, failures


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def run(total: int, concurrency: int) -> dict[str, Any]:
    """Serve, post `total` events, stop, count the journal; returns the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="gupshup-bench-hooks-"))
    journal = workdir / "journal.sqlite3"
    port = free_port()
    command = [sys.executable, "-m", "gupshup_async", "webhooks", "serve", "--journal",
               str(journal), "--port", str(port), "--secret-env", "BENCH_SECRET"]  # fmt: skip
    env = {**os.environ, "BENCH_SECRET": SECRET}
    server = subprocess.Popen(pinned(command, MOCK_CORE), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert server.stdout is not None
    server.stdout.readline()  # "Receiving Gupshup webhooks on ..."
    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CORE})
    try:
        asyncio.run(_post_all(f"http://127.0.0.1:{port}/", 500, concurrency, 10**8))  # warm-up
        elapsed, latencies, failures = asyncio.run(
            _post_all(f"http://127.0.0.1:{port}/", total, concurrency)
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    with sqlite3.connect(journal) as db:
        stored = db.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0]
    return {
        "events": total,
        "concurrency": concurrency,
        "events_per_second": round(total / elapsed),
        "ack_p50_ms": round(_percentile(latencies, 50) * 1000, 2),
        "ack_p99_ms": round(_percentile(latencies, 99) * 1000, 2),
        "non_2xx": failures,
        "stored": stored - 500,  # less the warm-up's
        "lost": total - failures - (stored - 500),
        "pinned": can_pin(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 000 events; results not saved")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    total = args.events or (3_000 if args.quick else 20_000)
    figures = run(total, args.concurrency)
    print(json.dumps(figures))
    if not args.quick and args.events is None:
        (RESULTS / "webhooks.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
