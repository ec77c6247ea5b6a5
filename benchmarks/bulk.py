"""The SDK against what users would write instead, side by side in one run.

    python -m benchmarks.bulk            # about 6 minutes on 2 cores
    python -m benchmarks.bulk --quick    # one repetition, shorter runs
    python -m benchmarks.bulk --baseline /tmp/before   # also an older checkout, same run

The mock runs in its own uvicorn process pinned to core 1; every measurement runs in a fresh
client process pinned to core 0 (clean peak RSS, no state carried over), after a warm-up that
also sizes the run to take a few seconds. Variants are interleaved across repetitions so machine
noise hits them alike; the table shows the median and the min-max.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    RESULTS,
    get,
    machine,
    max_in_window,
    median,
    mock_process,
    peak_rss_mb,
    post,
    run_worker,
)

APP_ID, TOKEN = "mock-app", "mock-token"
BODY_TEXT = "Your order #123456 has shipped and will arrive on Thursday. " * 4  # ~240 chars
WARMUP = 300

# name -> (kind, concurrency, rate)
VARIANTS: dict[str, tuple[str, int, float | None]] = {
    "reference (sequential, 1 s sleep)": ("reference", 1, None),
    "httpx default, c=64": ("httpx", 64, None),
    "httpx default, c=256": ("httpx", 256, None),
    "aiohttp, c=64": ("aiohttp", 64, None),
    "aiohttp, c=256": ("aiohttp", 256, None),
    "BulkSender, c=64": ("bulk", 64, None),
    "BulkSender, c=256": ("bulk", 256, None),
    "BulkSender httpx path, c=64": ("bulk_httpx", 64, None),
    "BulkSender + journal, c=64": ("journal", 64, None),
    "BulkSender rate=80": ("bulk", 64, 80.0),
    "BulkSender rate=1000": ("bulk", 64, 1000.0),
}


def _body(to: str) -> bytes:
    return json.dumps(
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"body": BODY_TEXT},
        }
    ).encode()


def _numbers(start: int, n: int) -> list[str]:
    return [f"91{start + i:010d}" for i in range(n)]


# ------------------------------------------------------------------ the variants (worker side)


async def _gather_loop(
    n: int, start: int, concurrency: int, one: Callable[[str], Awaitable[None]]
) -> None:
    """What a user writes by hand: one task per recipient, a semaphore, gather."""
    semaphore = asyncio.Semaphore(concurrency)

    async def bounded(to: str) -> None:
        async with semaphore:
            await one(to)

    await asyncio.gather(*(bounded(to) for to in _numbers(start, n)))


Batch = Callable[[int, int, "float | None"], Awaitable[None]]


@asynccontextmanager
async def httpx_variant(base_url: str, concurrency: int) -> AsyncIterator[Batch]:
    """One shared `httpx.AsyncClient` with default settings, gather over a semaphore."""
    import httpx

    url = f"{base_url}/partner/app/{APP_ID}/v3/message"
    headers = {"Authorization": TOKEN, "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:

        async def one(to: str) -> None:
            (await client.post(url, content=_body(to), headers=headers)).raise_for_status()

        yield lambda n, start, rate: _gather_loop(n, start, concurrency, one)


@asynccontextmanager
async def aiohttp_variant(base_url: str, concurrency: int) -> AsyncIterator[Batch]:
    """One `aiohttp.ClientSession`, gather over a semaphore: the fastest hand-written loop."""
    import aiohttp

    url = f"{base_url}/partner/app/{APP_ID}/v3/message"
    headers = {"Authorization": TOKEN, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=max(100, concurrency))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(to: str) -> None:
            async with session.post(url, data=_body(to), headers=headers) as answer:
                answer.raise_for_status()
                await answer.read()

        yield lambda n, start, rate: _gather_loop(n, start, concurrency, one)


@asynccontextmanager
async def bulk_variant(base_url: str, concurrency: int) -> AsyncIterator[Batch]:
    """`BulkSender` over one `AsyncGupshupClient`, as unlimited or paced as asked."""
    import gupshup_async as g

    async with g.AsyncGupshupClient(APP_ID, TOKEN, base_url=base_url) as client:

        async def batch(n: int, start: int, rate: float | None) -> None:
            sender = g.BulkSender(client, rate=rate, concurrency=concurrency)
            results = await sender.send(_numbers(start, n), g.Text(body=BODY_TEXT))
            failed = [r for r in results if not r["success"]]
            if failed:
                raise RuntimeError(f"{len(failed)} failed, e.g. {failed[0]}")

        yield batch


@asynccontextmanager
async def bulk_httpx_variant(base_url: str, concurrency: int) -> AsyncIterator[Batch]:
    """`BulkSender` over a caller's `httpx.AsyncClient` on the same aiohttp transport: the
    httpx path the owned pool skips (its Request/Response/Headers objects), for comparison."""
    import gupshup_async as g
    from gupshup_async._transport import create_http_client

    async with (
        create_http_client(timeout=10.0) as http,
        g.AsyncGupshupClient(APP_ID, TOKEN, base_url=base_url, http_client=http) as client,
    ):

        async def batch(n: int, start: int, rate: float | None) -> None:
            sender = g.BulkSender(client, rate=rate, concurrency=concurrency)
            results = await sender.send(_numbers(start, n), g.Text(body=BODY_TEXT))
            failed = [r for r in results if not r["success"]]
            if failed:
                raise RuntimeError(f"{len(failed)} failed, e.g. {failed[0]}")

        yield batch


@asynccontextmanager
async def journal_variant(base_url: str, concurrency: int) -> AsyncIterator[Batch]:
    """The campaign's code path: a recipients file, the SQLite journal, `BulkSender`."""
    import gupshup_async as g
    from gupshup_async.cli._campaign import CampaignOptions, run_campaign
    from gupshup_async.cli._progress import ProgressDisplay

    async with g.AsyncGupshupClient(APP_ID, TOKEN, base_url=base_url) as client:

        async def batch(n: int, start: int, rate: float | None) -> None:
            with tempfile.TemporaryDirectory() as folder:
                recipients = Path(folder) / "to.txt"
                recipients.write_text("\n".join(_numbers(start, n)) + "\n")
                options = CampaignOptions(
                    recipients=recipients,
                    message=g.Text(body=BODY_TEXT),
                    rate=rate,
                    concurrency=concurrency,
                    journal=Path(folder) / "journal.sqlite3",
                )
                display = ProgressDisplay(enabled=False, stream=io.StringIO())
                report = await run_campaign(options, display, client=client)
            if report.counts.get("sent") != n:
                raise RuntimeError(f"journaled run sent {report.counts}")

        yield batch


@asynccontextmanager
async def reference_variant(base_url: str, concurrency: int) -> AsyncIterator[Batch]:
    """The reference's sendBulkMessages: one at a time, a fixed 1 s sleep after each."""
    import httpx

    url = f"{base_url}/partner/app/{APP_ID}/v3/message"
    headers = {"Authorization": TOKEN, "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:

        async def batch(n: int, start: int, rate: float | None) -> None:
            for to in _numbers(start, n):
                await client.post(url, content=_body(to), headers=headers)
                await asyncio.sleep(1.0)

        yield batch


KINDS = {
    "httpx": httpx_variant,
    "aiohttp": aiohttp_variant,
    "bulk": bulk_variant,
    "bulk_httpx": bulk_httpx_variant,
    "journal": journal_variant,
    "reference": reference_variant,
}


async def measure(
    kind: str, base_url: str, concurrency: int, rate: float | None, seconds: float
) -> dict[str, Any]:
    """Set up once, warm up (connections, caches), size the run to `seconds`, then time it:
    wall clock, and this process's CPU."""
    start = random.randrange(10**9)
    async with KINDS[kind](base_url, concurrency) as batch:
        if kind == "reference":
            n = 3
        else:
            began = time.perf_counter()
            await batch(WARMUP, start, None)  # paced variants warm up unpaced
            warm_rate = WARMUP / (time.perf_counter() - began)
            start += WARMUP
            n = int(rate * seconds) if rate else max(WARMUP, min(60_000, int(warm_rate * seconds)))
        post(base_url, "/_mock/reset")
        wall, cpu = time.perf_counter(), time.process_time()
        await batch(n, start, rate)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = get(base_url, "/_mock/stats?summary=1")
    result: dict[str, Any] = {
        "n": n,
        "rate": n / wall,
        "cpu_us": cpu / n * 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "accepted": stats["accepted"],
    }
    if rate is not None:
        arrivals = get(base_url, "/_mock/arrivals")["arrivals"]
        burst = max(1, round(rate / 10))
        span = max(arrivals) - min(arrivals)
        # The bucket starts full, so arrivals are evenly spaced from the first one on.
        result["achieved_rate"] = (len(arrivals) - 1) / span if span > 0 else None
        result["max_1s_window"] = max_in_window(arrivals)
        result["bound"] = rate + burst
    return result


# ------------------------------------------------------------------ the orchestrator


def _worker(args: argparse.Namespace) -> None:
    kind, concurrency, rate = VARIANTS[args.variant]
    result = asyncio.run(measure(kind, args.base_url, concurrency, rate, args.seconds))
    print(json.dumps(result))


BASELINE = " @baseline"


def _variant(name: str) -> tuple[str, int, float | None]:
    """What `name` measures; a baseline row measures its variant in the baseline checkout."""
    return VARIANTS[name.removesuffix(BASELINE)]


def _measure_in_subprocess(
    variant: str, base_url: str, seconds: float, baseline: Path | None
) -> dict[str, Any]:
    arguments = [
        "--worker",
        "--variant",
        variant.removesuffix(BASELINE),
        "--base-url",
        base_url,
        "--seconds",
        str(seconds),
    ]
    cwd = baseline if variant.endswith(BASELINE) else None
    return run_worker("benchmarks.bulk", *arguments, cwd=cwd)


def _summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for name, measured in runs.items():
        rates = [m["rate"] for m in measured]
        row = {
            "rate": median(rates),
            "rate_min": min(rates),
            "rate_max": max(rates),
            "cpu_us": median([m["cpu_us"] for m in measured]),
            "peak_rss_mb": median([m["peak_rss_mb"] for m in measured]),
            "n": measured[-1]["n"],
        }
        if "achieved_rate" in measured[0]:
            row["achieved_rate"] = median([m["achieved_rate"] for m in measured])
            row["max_1s_window"] = max(m["max_1s_window"] for m in measured)
            row["bound"] = measured[0]["bound"]
        table[name] = row
    for name, row in table.items():
        _, concurrency, rate = _variant(name)
        for peer in ("httpx default", "aiohttp"):
            reference = table.get(f"{peer}, c={concurrency}")
            if reference and rate is None:
                row[f"vs {peer}"] = row["rate"] / reference["rate"]
    return table


def _paired(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Each variant against its peer measured in the same round, the median over rounds.

    A round measures every variant back to back, so a machine that slows down for a while
    slows a variant and its peer alike: the median of these paired ratios moves less than
    the ratio of the medians when the machine is noisy.
    """
    lines = [
        "| variant | peer | msg/s ratio (median of rounds) | CPU µs/msg ratio |",
        "|---|---|---:|---:|",
    ]
    for name, measured in runs.items():
        kind, concurrency, rate = _variant(name)
        if rate is not None or kind in ("aiohttp", "reference"):
            continue
        peer = "BulkSender, c=64" if kind == "journal" else f"aiohttp, c={concurrency}"
        if name.endswith(BASELINE) and kind == "journal":
            peer += BASELINE
        if peer not in runs or peer == name:
            continue
        pairs = list(zip(measured, runs[peer], strict=False))
        speed = median([m["rate"] / p["rate"] for m, p in pairs])
        cpu = median([m["cpu_us"] / p["cpu_us"] for m, p in pairs])
        lines.append(f"| {name} | {peer} | {speed:.2f}x | {cpu:.2f}x |")
    return "\n".join(lines)


def _markdown(table: dict[str, dict[str, Any]], repeats: int) -> str:
    lines = [
        f"| variant | msg/s (median of {repeats}) | min-max | client CPU µs/msg | peak RSS MB "
        "| vs httpx default | vs aiohttp |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in table.items():
        ratios = [
            f"{row[key]:.2f}x" if key in row else "-" for key in ("vs httpx default", "vs aiohttp")
        ]
        lines.append(
            f"| {name} | {row['rate']:.0f} | {row['rate_min']:.0f}-{row['rate_max']:.0f} "
            f"| {row['cpu_us']:.0f} | {row['peak_rss_mb']:.0f} | {ratios[0]} | {ratios[1]} |"
        )
    paced = {n: r for n, r in table.items() if "achieved_rate" in r}
    if paced:
        lines += [
            "",
            "| paced variant | set rate | achieved (sustained) | error | largest 1 s window "
            "| bound (rate + burst) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in paced.items():
            rate = _variant(name)[2] or 0.0
            lines.append(
                f"| {name} | {rate:.0f} | {row['achieved_rate']:.1f} "
                f"| {100 * (row['achieved_rate'] / rate - 1):+.1f}% | {row['max_1s_window']} "
                f"| {row['bound']:.0f} |"
            )
    reference = table.get("reference (sequential, 1 s sleep)")
    if reference:
        hours = 100_000 / reference["rate"] / 3600
        lines += ["", f"The reference's design would need {hours:.1f} h for 100 000 recipients."]
    return "\n".join(lines)


def _chart(table: dict[str, dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = [n for n in table if _variant(n)[2] is None and _variant(n)[0] != "reference"]
    rates = [table[n]["rate"] for n in names]
    errors = [
        [table[n]["rate"] - table[n]["rate_min"] for n in names],
        [table[n]["rate_max"] - table[n]["rate"] for n in names],
    ]
    colours = ["#1f77b4" if "BulkSender" in n else "#aaaaaa" for n in names]
    figure, axes = plt.subplots(figsize=(9, 4.5))
    axes.barh(names, rates, xerr=errors, color=colours)
    axes.invert_yaxis()
    axes.set_xlabel("messages per second (median, min-max), loopback mock on its own core")
    axes.set_title("gupshup-async BulkSender vs hand-written loops")
    for y, name in enumerate(names):
        axes.text(table[name]["rate_max"], y, f"  {table[name]['rate']:.0f}", va="center")
    axes.set_xlim(0, max(table[n]["rate_max"] for n in names) * 1.15)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="target length of each measurement"
    )
    parser.add_argument("--quick", action="store_true", help="one repetition of 2 s each")
    parser.add_argument(
        "--only", action="append", default=None, help="run only variants containing this text"
    )
    parser.add_argument(
        "--replot", action="store_true", help="redraw the table and chart from latest.json"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of an older commit (git worktree add DIR COMMIT): its unlimited "
        "BulkSender variants are measured too, interleaved in the same run",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    if args.replot:
        saved = json.loads((RESULTS / "latest.json").read_text())
        print(_markdown(saved["table"], saved["repeats"]))
        _chart(saved["table"], RESULTS / "bulk.png")
        return
    if args.quick:
        args.repeats, args.seconds = 1, 2.0
    names = [n for n in VARIANTS if not args.only or any(o in n for o in args.only)]
    if args.baseline:
        names += [
            n + BASELINE
            for n in list(names)
            if VARIANTS[n][0] in ("bulk", "journal") and VARIANTS[n][2] is None
        ]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with mock_process() as base_url:
        for repeat in range(args.repeats):
            order = names[repeat % len(names) :] + names[: repeat % len(names)]
            for name in order:
                print(f"[{repeat + 1}/{args.repeats}] {name} ...", file=sys.stderr, flush=True)
                runs[name].append(
                    _measure_in_subprocess(name, base_url, args.seconds, args.baseline)
                )
    table = _summarise(runs)
    print(_markdown(table, args.repeats))
    print("\n" + _paired(runs))
    if args.quick or args.only:
        print("\n(partial run: benchmarks/results/ left as it was)")
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine(),
        "repeats": args.repeats,
        "seconds": args.seconds,
        "table": table,
        "runs": runs,
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    if _chart(table, RESULTS / "bulk.png"):
        print(f"\nChart: {RESULTS / 'bulk.png'}")


if __name__ == "__main__":
    main()
