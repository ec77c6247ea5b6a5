"""Webhook ingestion: events per second stored durably by `webhooks serve`, and ack latency.

The receiver runs as a user runs it (`gupshup-async webhooks serve --journal J --secret-env`)
in its own process pinned to one core; a raw aiohttp client on the other core posts one status
event per request (as Gupshup does) at a fixed concurrency, timing each answer. After the run
the journal is counted: every acknowledged event must be in it, once.

    python -m benchmarks.webhooks            # about 3 minutes
    python -m benchmarks.webhooks --quick    # 3 000 events, 500 recipients; prints only

A raw-Python client cannot saturate the server on this 2-core machine (the peer, uvicorn
answering without reading the JSON, reaches the same rate), so the capacity figure is the
server's CPU time per event: `events_per_cpu_second` is what one core ingests.

Then the chaos run with webhooks on (`settle`): a real campaign against the mock injecting
dropped connections, timeouts and malformed answers, the mock posting every accepted message's
statuses to `webhooks serve`, then `report --json`: how many ambiguous recipients the webhooks
settled, against how many the mock had in fact accepted.
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _null_app(scope: Any, receive: Any, send: Any) -> None:
    """The peer: reads the body and answers 200, nothing else (the floor of uvicorn + ASGI)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"15")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


def _serve(variant: str, port: int) -> None:
    """Serve one variant on `port` (run in its own pinned process by `run`)."""
    import socket

    import uvicorn

    from gupshup_async.cli._webhooks import receiver_config
    from gupshup_async.mock._server import uvicorn_config
    from gupshup_async.webhooks import WebhookReceiver

    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    if variant == "peer":
        config = uvicorn_config(_null_app, proxy_headers=False)
    else:
        config = receiver_config(WebhookReceiver(secret=SECRET))
    sock.listen(4096)  # connections queue from here on, while uvicorn starts
    print("serving", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


#: peer: uvicorn answering 200 without reading the JSON; memory: the receiver parsing and
#: deduplicating in memory; journal: `webhooks serve`, every event committed before the 200.
VARIANTS = ("peer", "memory", "journal")


def run(variant: str, total: int, concurrency: int) -> dict[str, Any]:
    """Serve `variant`, post `total` events, stop, count the journal; returns the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="gupshup-bench-hooks-"))
    journal = workdir / "journal.sqlite3"
    port = free_port()
    if variant == "journal":
        command = [sys.executable, "-m", "gupshup_async", "webhooks", "serve", "--journal",
                   str(journal), "--port", str(port), "--secret-env", "BENCH_SECRET"]  # fmt: skip
    else:
        command = [sys.executable, "-m", "benchmarks.webhooks", "--serve", variant, str(port)]
    env = {**os.environ, "BENCH_SECRET": SECRET}
    server = subprocess.Popen(pinned(command, MOCK_CORE), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert server.stdout is not None
    server.stdout.readline()  # "Receiving Gupshup webhooks on ..." / "serving"
    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CORE})
    try:
        asyncio.run(_post_all(f"http://127.0.0.1:{port}/", 500, concurrency, 10**8))  # warm-up
        cpu_before = _cpu_seconds(server.pid)
        elapsed, latencies, failures = asyncio.run(
            _post_all(f"http://127.0.0.1:{port}/", total, concurrency)
        )
        cpu = _cpu_seconds(server.pid) - cpu_before
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    figures: dict[str, Any] = {
        "variant": variant,
        "events": total,
        "concurrency": concurrency,
        "events_per_second": round(total / elapsed),
        "server_cpu_us_per_event": round(cpu / total * 1e6),
        "events_per_cpu_second": round(total / cpu) if cpu else None,
        "ack_p50_ms": round(_percentile(latencies, 50) * 1000, 2),
        "ack_p99_ms": round(_percentile(latencies, 99) * 1000, 2),
        "non_2xx": failures,
    }
    if variant == "journal":
        with sqlite3.connect(journal) as db:
            stored = db.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0] - 500
        figures.update(stored=stored, lost=total - failures - stored)
    return figures


def settle(recipients: int) -> dict[str, Any]:
    """The chaos campaign with webhooks on; returns the settling figures."""
    from gupshup_async.mock import DeliveryPlan, FaultPlan, MockGupshupServer

    workdir = Path(tempfile.mkdtemp(prefix="gupshup-bench-settle-"))
    journal, numbers = workdir / "journal.sqlite3", workdir / "to.csv"
    numbers.write_text("phone\n" + "".join(f"9174{i:08d}\n" for i in range(recipients)))
    port = free_port()
    serve = [sys.executable, "-m", "gupshup_async", "webhooks", "serve", "--journal",
             str(journal), "--port", str(port), "--secret-env", "BENCH_SECRET"]  # fmt: skip
    env = {**os.environ, "BENCH_SECRET": SECRET}
    receiver = subprocess.Popen(serve, env=env, stdout=subprocess.PIPE, text=True)
    assert receiver.stdout is not None
    receiver.stdout.readline()
    faults = FaultPlan(seed=11, slow_seconds=3.0, rates={
        "429": 0.05, "500": 0.01, "504": 0.01, "drop_before": 0.01, "drop_after": 0.02,
        "slow": 0.01, "empty": 0.005, "truncated_json": 0.005, "no_message_id": 0.005})  # fmt: skip
    plan = DeliveryPlan(seed=11, failures={131047: 0.05, 131026: 0.02, 131049: 0.01},
                        duplicate_share=0.05, out_of_order_share=0.1)  # fmt: skip
    mock = MockGupshupServer(faults=faults, keep_messages=False, delivery=plan,
                             webhook_url=f"http://127.0.0.1:{port}/",
                             webhook_headers={"X-Webhook-Secret": SECRET})  # fmt: skip
    mock.start()
    try:
        campaign_env = {
            **os.environ,
            "GUPSHUP_APP_TOKEN": mock.token,
            "GUPSHUP_APP_ID": mock.app_id,
            "GUPSHUP_BASE_URL": mock.base_url,
        }
        subprocess.run([sys.executable, "-m", "gupshup_async", "campaign", str(numbers),
                        "--text", "hello", "--journal", str(journal), "--timeout", "1",
                        "--rate", "1000", "--no-progress"], env=campaign_env,
                       capture_output=True, check=True)  # fmt: skip
        started = time.monotonic()
        mock.wait_for_webhooks(timeout=300)
        drained = time.monotonic() - started
        accepted = set(mock.recorder.accepted)
        assert mock.webhooks is not None
        posted, gave_up = mock.webhooks.posted, mock.webhooks.gave_up
    finally:
        mock.stop()
        receiver.send_signal(signal.SIGTERM)
        receiver.communicate(timeout=60)
    done = subprocess.run([sys.executable, "-m", "gupshup_async", "report", str(journal),
                           "--json"], capture_output=True, text=True, check=True)  # fmt: skip
    report = json.loads(done.stdout)
    with sqlite3.connect(journal) as db:
        ambiguous = {row[0] for row in db.execute(
            "SELECT digits FROM recipients WHERE state = 'ambiguous'")}  # fmt: skip
    return {
        "recipients": recipients,
        "ambiguous": len(ambiguous),
        "ambiguous_accepted_by_mock": len(ambiguous & accepted),
        "ambiguous_settled": report["ambiguous_settled"],
        "ambiguous_unsettled": report["ambiguous_unsettled"],
        "report_matches_plan": {k: report[k] for k in plan.expected_funnel(accepted)}
        == plan.expected_funnel(accepted),
        "webhooks_posted": posted,
        "webhooks_given_up": gave_up,
        "drain_seconds_after_campaign": round(drained, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 000 events; results not saved")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--recipients", type=int, default=None, help="of the settle run")
    parser.add_argument("--serve", nargs=2, metavar=("VARIANT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]))
        return
    total = args.events or (3_000 if args.quick else 20_000)
    figures: dict[str, Any] = {"ingest": []}
    for variant in VARIANTS:
        figures["ingest"].append(run(variant, total, args.concurrency))
        print(json.dumps(figures["ingest"][-1]), flush=True)
    figures["settle"] = settle(args.recipients or (500 if args.quick else 5_000))
    print(json.dumps(figures["settle"]), flush=True)
    if not args.quick and args.events is None and args.recipients is None:
        (RESULTS / "webhooks.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
