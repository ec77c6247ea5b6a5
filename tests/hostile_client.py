"""One send against a hostile server, in a child process that measures its own memory.

    python -m tests.hostile_client BASE_URL {default,httpx} LIMIT_SECONDS

Prints one JSON line: the error class, its `ambiguous` flag, the seconds taken and the peak RSS
growth in MB over the baseline taken just before the send (sampled every 5 ms by a thread, so
a spike that is freed again still counts). `LIMIT_SECONDS` stops a send that would not end.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time

import httpx

import gupshup_async as g

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class PeakRss:
    """Samples this process's RSS on a thread until stopped; `peak` is the largest seen."""

    def __init__(self) -> None:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _rss())


async def main(base_url: str, transport: str, limit: float) -> dict[str, object]:
    http = httpx.AsyncClient() if transport == "httpx" else None
    client = g.AsyncGupshupClient("app", "tok", base_url=base_url, http_client=http)
    outcome: dict[str, object] = {"error": None, "ambiguous": None}
    try:
        baseline = _rss()
        sampler = PeakRss()
        started = time.monotonic()
        try:
            await asyncio.wait_for(client.send("919876543210", g.Text(body="hi")), limit)
        except asyncio.TimeoutError:
            outcome["error"] = "still running at the limit"
        except Exception as exc:
            outcome = {"error": type(exc).__name__, "ambiguous": getattr(exc, "ambiguous", None)}
        outcome["seconds"] = round(time.monotonic() - started, 2)
        outcome["growth_mb"] = round((sampler.stop() - baseline) / 2**20, 1)
    finally:
        await client.aclose()
        if http is not None:
            await http.aclose()
    return outcome


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))))
