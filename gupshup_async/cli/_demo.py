"""`gupshup-async demo`: a campaign against the embedded mock, with a realistic fault mix."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from .._messages import Text
from ..journal.delivery import DeliveryJournal
from ..mock import DeliveryPlan, FaultPlan, MockGupshupServer
from ..webhooks import WebhookReceiver
from ._campaign import CampaignOptions
from ._progress import ProgressDisplay
from ._report import funnel, render
from ._webhooks import ReceiverThread

#: A few throttled answers (with Retry-After) and some 503s, both retried by the client.
DEMO_FAULT_RATES = {"429": 0.002, "503": 0.004}
DEMO_RETRY_AFTER = 0.25
DEMO_INVALID = ["12345", "+44 20 7946 CALL", "n/a"]
DEMO_SEED = 2026
#: What WhatsApp does after Gupshup accepts: 3% outside the 24 h window, 1% undeliverable,
#: 1% held back by Meta; 60% of the rest read.
#: Seconds the demo waits for the mock's delivery webhooks before showing the funnel so far.
DEMO_WEBHOOK_WAIT = 60.0
DEMO_DELIVERY = DeliveryPlan(
    seed=DEMO_SEED, failures={131047: 0.03, 131026: 0.01, 131049: 0.01}, read_share=0.6,
    delays=(0.0, 0.05, 0.1, 0.3), duplicate_share=0.01, out_of_order_share=0.02,
)  # fmt: skip


def write_demo_recipients(path: Path, count: int, *, seed: int = DEMO_SEED) -> tuple[int, str]:
    """Write `count` distinct Indian mobile numbers, a few invalid ones and two repeats.

    Returns (lines written, the number chosen to get an ambiguous 504).
    """
    rng = random.Random(seed)
    numbers = [
        f"+91 {n // 100000} {n % 100000:05d}"
        for n in rng.sample(range(7_000_000_000, 9_999_999_999), count)
    ]
    lines = numbers + DEMO_INVALID + [numbers[1], numbers[2]]
    rng.shuffle(lines)
    path.write_text("phone,name\n" + "".join(f"{n},Customer {i}\n" for i, n in enumerate(lines)))
    return len(lines), "91" + numbers[len(numbers) // 2].replace("+91", "").replace(" ", "")


def run_demo(args: argparse.Namespace) -> int:
    """Start the mock, run the campaign through the real command path, print the summary."""
    from . import run_and_report

    try:
        import uvicorn  # noqa: F401  (the mock's server: only in the mock/cli extras)
    except ImportError:
        print(
            "gupshup-async: error: the demo needs the mock server: "
            "pip install 'gupshup-async[cli]'",
            file=sys.stderr,
        )
        return 2
    display = ProgressDisplay(enabled=args.progress)
    workdir = Path(tempfile.mkdtemp(prefix="gupshup-demo-"))
    recipients = workdir / "recipients.csv"
    lines, ambiguous = write_demo_recipients(recipients, args.recipients)
    plan = FaultPlan(
        seed=DEMO_SEED,
        rates=DEMO_FAULT_RATES,
        schedule={ambiguous: ["504"]},
        retry_after=DEMO_RETRY_AFTER,
    )
    journal = workdir / "journal.sqlite3"
    hooks = ReceiverThread(WebhookReceiver(journal=journal))
    hooks.start()
    server = MockGupshupServer(
        faults=plan, keep_messages=False, webhook_url=hooks.url, delivery=DEMO_DELIVERY
    )
    server.start()
    try:
        display.print(f"Mock Gupshup API on {server.base_url} (no credentials, loopback only)")
        display.print(
            f"Campaign: {lines} lines of {recipients} at {args.rate:g} msg/s, "
            f"concurrency {args.concurrency}; faults: 0.2% 429 (Retry-After "
            f"{DEMO_RETRY_AFTER:g} s), 0.4% 503, one 504, {len(DEMO_INVALID)} invalid numbers, "
            "2 repeats"
        )
        options = CampaignOptions(
            recipients=recipients,
            message=Text(body="Your order has shipped! Track it at https://example.com/t/123"),
            app_id=server.app_id,
            token=server.token,
            base_url=server.base_url,
            rate=args.rate,
            concurrency=args.concurrency,
            journal=journal,
            results=workdir / "results.jsonl",
        )
        status = run_and_report(options, display)
        stats = server.recorder.stats(per_recipient=False)
        display.print(
            f"Mock server saw {stats['attempts']} attempts and accepted {stats['accepted']} "
            "messages (each recipient at most once)."
        )
        display.print(f"Waiting for the delivery webhooks (receiver on {hooks.url}) ...")
        still = server.wait_for_webhooks(timeout=DEMO_WEBHOOK_WAIT)
        hooks.stop()
        if still:
            display.print(f"{still} message(s) still had webhooks on the way: the funnel so far.")
        reader = DeliveryJournal(journal)
        try:
            display.print("Delivery funnel (gupshup-async report " + str(journal) + "):")
            display.print(render(funnel(reader)))
        finally:
            reader.close()
        return status
    finally:
        server.stop()
        hooks.stop()
