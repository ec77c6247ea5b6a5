"""A personalised message to a few thousand numbers through BulkSender, against the mock.

python examples/bulk_campaign.py [how-many]
"""

from __future__ import annotations

import asyncio
import collections
import sys
import time

import gupshup_async as g
from gupshup_async.mock import FaultPlan, MockGupshupServer

CUSTOMERS = {
    f"+91 98{i:08d}": f"Customer {i}"
    for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
}


def message_for(to: str) -> g.Message:
    return g.Text(body=f"Hi {CUSTOMERS[to]}, your order has shipped.")


async def main() -> None:
    faults = FaultPlan(seed=1, rates={"429": 0.002, "503": 0.005, "500": 0.001})
    async with (
        MockGupshupServer(faults=faults) as mock,
        g.AsyncGupshupClient(mock.app_id, mock.token, base_url=mock.base_url) as client,
    ):
        sender = g.BulkSender(client, rate=500, concurrency=64)
        started = time.monotonic()
        results = await sender.send(list(CUSTOMERS), message_for)
        elapsed = time.monotonic() - started
    sent = sum(r["success"] for r in results)
    reasons = collections.Counter(r["error"] for r in results if not r["success"])  # type: ignore[typeddict-item]
    speed = len(results) / elapsed
    print(f"{len(results)} recipients in {elapsed:.1f} s ({speed:.0f}/s): {sent} sent")
    for reason, count in reasons.most_common():
        print(f"  {count:>5}  {reason}")
    print(f"The mock accepted {mock.recorder.total_accepted} messages, "
          f"most for one recipient: {max(mock.recorder.accepted.values())}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
