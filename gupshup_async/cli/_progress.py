"""The terminal side of a campaign: a progress bar while sending and the final summary.

rich draws both when installed (the `cli` extra); the bar stays quiet when stdout is not a
terminal. Counters are bumped per result; the bar is redrawn a few times a second by a task
of its own, so a fast campaign does not pay for drawing on every result.

Throttling is shown, not logged: the bar carries the current rate and the number of rate cuts,
the summary says it once. The SDK's per-event throttling logs never reach the terminal, and any
other warning is printed once however often it repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .._bulk import BulkSender, Outcome

if TYPE_CHECKING:
    from ._campaign import CampaignReport

_REFRESH_SECONDS = 0.2
#: The logger of the sender's pacing (throttling, rate cuts): shown in the bar, not printed.
PACING_LOGGER = "gupshup_async.bulk"


@dataclass(frozen=True)
class Throttling:
    """What throttling did to one run: answers throttled, rate cuts, rates in msg/s."""

    throttled: int = 0
    rate_cuts: int = 0
    current_rate: float | None = None
    lowest_rate: float | None = None

    @classmethod
    def of(cls, sender: BulkSender) -> Throttling:
        """The sender's counters now."""
        return cls(
            throttled=sender.throttled,
            rate_cuts=sender.rate_cuts,
            current_rate=sender.current_rate,
            lowest_rate=sender.lowest_rate,
        )

    def summary(self) -> str | None:
        """One line for the summary, or None when nothing was throttled."""
        if not (self.throttled or self.rate_cuts):
            return None
        parts = [f"Throttled: {self.throttled} answer(s)"] if self.throttled else ["Throttled"]
        parts.append(f"rate cut {self.rate_cuts} time(s)")
        if self.rate_cuts and self.lowest_rate is not None:
            parts.append(f"lowest {self.lowest_rate:.1f} msg/s")
        return ", ".join(parts)


class ProgressDisplay:
    """Progress while sending (on a terminal only) and the summary afterwards."""

    def __init__(self, *, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._console: Any = None
        try:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False, soft_wrap=True)
        except ImportError:  # pragma: no cover - rich comes with the cli extra
            pass
        terminal = self._console.is_terminal if self._console else self.stream.isatty()
        self.enabled = terminal if enabled is None else enabled
        self.sent = self.failed = 0
        self._progress: Any = None
        self._task_id: Any = None
        self._ticker: asyncio.Task[None] | None = None
        self._started = 0.0
        self._sender: BulkSender | None = None
        self._log_handler: logging.Handler = logging.NullHandler()

    def print(self, text: str = "") -> None:
        """One line of output, through rich when available."""
        if self._console is not None:
            self._console.print(text, markup=False)
        else:
            print(text, file=self.stream)

    def start(
        self, *, total: int, already_done: int, resumed: bool, sender: BulkSender | None = None
    ) -> None:
        """Begin a sending phase of `total` recipients (throttling read from `sender`)."""
        self._started = time.monotonic()
        self._sender = sender
        self._log_handler = _DisplayLogHandler(self)
        logging.getLogger("gupshup_async").addHandler(self._log_handler)
        if resumed:
            self.print(f"Resuming: {already_done} recipient(s) already have a final result.")
        if not (self.enabled and self._console is not None):
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sent {task.fields[sent]}  failed {task.fields[failed]}"),
            TextColumn("{task.fields[rate]:>7.1f} msg/s"),
            TextColumn("{task.fields[throttling]}"),
            TimeRemainingColumn(),
            console=self._console,
            auto_refresh=False,
            transient=False,
        )
        self._task_id = self._progress.add_task(
            "send", total=total, sent=0, failed=0, rate=0.0, throttling=""
        )
        self._progress.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def advance(self, outcome: Outcome) -> None:
        """Count one final result."""
        if outcome.status == "sent":
            self.sent += 1
        else:
            self.failed += 1

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_REFRESH_SECONDS)
            self._redraw()

    def _redraw(self) -> None:
        done = self.sent + self.failed
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._progress.update(
            self._task_id,
            completed=done,
            sent=self.sent,
            failed=self.failed,
            rate=done / elapsed,
            throttling=self._throttling_field(),
        )
        self._progress.refresh()

    def _throttling_field(self) -> str:
        if self._sender is None:
            return ""
        now = Throttling.of(self._sender)
        if not (now.throttled or now.rate_cuts):
            return ""
        rate = f"limit {now.current_rate:.0f}/s " if now.current_rate is not None else ""
        return f"{rate}cuts {now.rate_cuts}"

    def stop(self) -> None:
        """Draw the final state of the bar and stop redrawing."""
        logging.getLogger("gupshup_async").removeHandler(self._log_handler)
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._progress is not None:
            with contextlib.suppress(Exception):
                self._redraw()
            self._progress.stop()
            self._progress = None

    def summary(self, report: CampaignReport) -> None:
        """The final report: outcomes by reason and code, speed, latency, where files are."""
        counts = report.counts
        total = sum(counts.values())
        if report.dry_run:
            self.print(f"Dry run: {total} recipient(s) read, nothing sent.")
            if report.read_as:
                self.print(f"  read as      {report.read_as}")
            self.print(f"  to send      {report.valid}")
            self._failure_lines(report)
            if report.projected_seconds is not None:
                self.print(f"  would take   {_duration(report.projected_seconds)} at the set rate")
            return
        title = "Campaign finished"
        if report.interrupted:
            title = "Campaign interrupted"
        elif report.stopped_by:
            title = f"Campaign stopped: {report.stopped_by}"
        self.print(f"{title}: {total} recipient(s)")
        self.print(f"  sent         {counts.get('sent', 0)}")
        self.print(f"  failed       {counts.get('failed', 0)}")
        self.print(f"  ambiguous    {counts.get('ambiguous', 0)}  (may have been delivered)")
        self.print(f"  invalid      {counts.get('invalid', 0)}")
        self.print(f"  duplicates   {counts.get('duplicate', 0)}  (skipped)")
        if counts.get("pending") or counts.get("sending"):
            left = counts.get("pending", 0) + counts.get("sending", 0)
            self.print(f"  not finished {left}  (run the same command again to resume)")
        self._failure_lines(report)
        self.print(
            f"This run: {report.finished_this_run} finished in {_duration(report.elapsed)}, "
            f"{report.achieved_rate:.1f} msg/s"
        )
        throttling = report.throttling.summary()
        if throttling is not None:
            self.print(throttling)
        p50, p95, p99 = (report.percentile(q) for q in (50, 95, 99))
        if p50 is not None and p95 is not None and p99 is not None:
            ms = [
                f"{name} {value * 1000:.1f} ms"
                for name, value in (("p50", p50), ("p95", p95), ("p99", p99))
            ]
            self.print("Latency: " + ", ".join(ms))
        if report.results is not None:
            self.print(f"Results: {report.results}")
        if report.journal is not None:
            self.print(f"Journal: {report.journal}")

    def _failure_lines(self, report: CampaignReport) -> None:
        if not report.failures:
            return
        self.print("Failures by reason:")
        for state, code, error, count in report.failures[:10]:
            code_text = f" code {code}" if code is not None else ""
            self.print(f"  {count:>7}  {state}{code_text}: {_short(error)}")
        if len(report.failures) > 10:
            self.print(f"  ... and {len(report.failures) - 10} more reason(s)")


class _DisplayLogHandler(logging.Handler):
    """Prints the SDK's warnings above the progress bar instead of through it, each kind once.

    The pacing's throttling logs are left out: the bar and the summary show throttling.
    """

    def __init__(self, display: ProgressDisplay) -> None:
        super().__init__(logging.WARNING)
        self.display = display
        self.seen: set[tuple[str, object]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == PACING_LOGGER:
            return
        kind = (record.name, record.msg)
        if kind in self.seen:
            return
        self.seen.add(kind)
        self.display.print(f"warning: {record.getMessage()}")


def _short(text: str | None, limit: int = 100) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"
