"""Peak memory while streaming many recipients, against the same process's baseline.

    python -m benchmarks.memory              # 100 000 and 1 000 000 (about 15 minutes)
    python -m benchmarks.memory --quick      # 100 000 only

Three runs, each in a fresh process pinned to core 0:
- `BulkSender.stream()` of 100 000 and of 1 000 000 generated numbers (never a list), against
  the mock in its own process on core 1, so the mock's bookkeeping is not counted;
- the campaign command's code path reading a 1 000 000-line CSV (journal on).
RSS is sampled every 0.2 s; growth = peak - the baseline taken after imports and warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._harness import RESULTS, machine, mock_process, rss_mb, run_worker

APP_ID, TOKEN = "mock-app", "mock-token"
TARGETS_MB = {100_000: 50, 1_000_000: 100}


def _numbers(n: int, prefix: str = "91") -> Iterator[str]:
    for i in range(n):
        yield f"{prefix}{i:010d}"


class Measured:
    """RSS from the moment it is entered (the baseline), sampled every 0.2 s, and wall time.

    The sampler is a thread, not a task: the campaign loads its file without yielding to the
    event loop, and a task would miss that phase's peak (the duplicate check's slots).
    """

    async def __aenter__(self) -> Measured:
        self.baseline = self.peak = rss_mb()
        self.started = time.perf_counter()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_mb())

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        self._sampler.join()
        self.peak = max(self.peak, rss_mb())
        self.seconds = time.perf_counter() - self.started

    def row(self, what: str, n: int, sent: int) -> dict[str, Any]:
        return {"what": what, "n": n, "sent": sent, "baseline_mb": self.baseline,
                "peak_mb": self.peak, "growth_mb": self.peak - self.baseline,
                "seconds": self.seconds}  # fmt: skip


async def stream_run(base_url: str, n: int) -> dict[str, Any]:
    import gupshup_async as g

    async with g.AsyncGupshupClient(APP_ID, TOKEN, base_url=base_url) as client:
        sender = g.BulkSender(client, rate=None, concurrency=64)
        async for _ in sender.stream(_numbers(500, "93"), g.Text(body="warm-up")):
            pass
        sent = 0
        async with Measured() as measured:
            message = g.Text(body="Your order has shipped.")
            async for result in sender.stream(_numbers(n), message):
                sent += result["success"]
    return measured.row(f"BulkSender.stream() of {n:,}", n, sent)


async def campaign_run(base_url: str, n: int) -> dict[str, Any]:
    import gupshup_async as g
    from gupshup_async.cli._campaign import CampaignOptions, run_campaign
    from gupshup_async.cli._progress import ProgressDisplay

    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "recipients.csv"
        with csv.open("w") as handle:
            handle.write("phone,name\n")
            for i, number in enumerate(_numbers(n, "92")):
                handle.write(f"{number},Customer {i}\n")
        display = ProgressDisplay(enabled=False, stream=io.StringIO())
        options = CampaignOptions(
            recipients=csv,
            message=g.Text(body="Your order has shipped."),
            app_id=APP_ID,
            token=TOKEN,
            base_url=base_url,
            rate=None,
            concurrency=64,
            journal=Path(folder) / "journal.sqlite3",
        )
        async with Measured() as measured:
            report = await run_campaign(options, display)
    what = f"campaign of a {n:,}-line CSV (journal on)"
    return measured.row(what, n, report.counts.get("sent", 0))


def _in_subprocess(kind: str, n: int, base_url: str) -> dict[str, Any]:
    return run_worker("benchmarks.memory", "--worker", kind, "--n", str(n), "--base-url", base_url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 000 recipients only")
    parser.add_argument("--worker", choices=["stream", "campaign"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run = stream_run if args.worker == "stream" else campaign_run
        print(json.dumps(asyncio.run(run(args.base_url, args.n))))
        return
    plan = (
        [("stream", 100_000)]
        if args.quick
        else [("stream", 100_000), ("stream", 1_000_000), ("campaign", 1_000_000)]
    )
    rows = []
    with mock_process() as base_url:
        for kind, n in plan:
            print(f"{kind} {n:,} ...", file=sys.stderr, flush=True)
            rows.append(_in_subprocess(kind, n, base_url))
    lines = [
        "| run | sent | baseline RSS MB | peak RSS MB | growth MB | target | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        target = TARGETS_MB.get(row["n"])
        lines.append(
            f"| {row['what']} | {row['sent']:,} | {row['baseline_mb']:.0f} "
            f"| {row['peak_mb']:.0f} | {row['growth_mb']:.1f} | < {target} | {row['seconds']:.0f} |"
        )
    print("\n".join(lines))
    if args.quick:
        return  # a partial run leaves the recorded results alone
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "memory.json").write_text(
        json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
