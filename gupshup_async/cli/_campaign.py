"""The campaign: load the recipients into the journal, send what is pending, report."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .._bulk import BulkSender, Outcome
from .._client import AsyncGupshupClient, encode_message
from .._errors import AuthenticationError, GupshupError, PermissionDeniedError
from .._messages import Message
from ..journal import Journal
from ..webhooks.reconcile import callback_key
from ._inputs import file_digest, iter_recipients
from ._latency import LatencyHistogram
from ._progress import ProgressDisplay

#: Answers that mean no recipient can be sent to: the campaign stops and they stay pending.
FATAL_ERRORS = (AuthenticationError, PermissionDeniedError)


@dataclass
class CampaignOptions:
    """Everything one campaign run needs; the token never leaves this object but to the client."""

    recipients: Path
    message: Message
    app_id: str | None = None
    token: str | None = field(default=None, repr=False)
    base_url: str = "https://partner.gupshup.io"
    rate: float | None = 80.0
    burst: int | None = None
    concurrency: int = 64
    timeout: float = 10.0
    max_retries: int = 5
    journal: Path | None = None
    results: Path | None = None
    dry_run: bool = False
    resend_ambiguous: bool = False
    show_progress: bool | None = None
    media: Path | None = None  # uploaded once before sending; `message` holds its placeholder id
    media_type: str | None = None


@dataclass
class CampaignReport:
    """What the run did: counts by state across all runs, this run's speed and latencies."""

    counts: dict[str, int]
    failures: list[tuple[str, int | None, str, int]]
    resumed: bool
    sent_this_run: int = 0
    finished_this_run: int = 0
    elapsed: float = 0.0
    latencies: LatencyHistogram = field(default_factory=LatencyHistogram)
    interrupted: bool = False
    journal: Path | None = None
    results: Path | None = None
    rate_cuts: int = 0
    dry_run: bool = False
    valid: int = 0
    projected_seconds: float | None = None
    stopped_by: str | None = None  # the API error that made sending pointless (401, 403)

    @property
    def achieved_rate(self) -> float:
        """Requests finished per second of sending in this run."""
        return self.finished_this_run / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        """Latency percentile `q` (0-100) in seconds over this run's sends (within 2%)."""
        return self.latencies.percentile(q)


def message_digest(message: Message) -> str:
    """SHA-256 of the message's wire encoding: what ties a journal to its message."""
    return hashlib.sha256(encode_message(message).encode()).hexdigest()


async def run_campaign(
    options: CampaignOptions,
    display: ProgressDisplay,
    *,
    client: AsyncGupshupClient | None = None,
) -> CampaignReport:
    """Run (or resume, or dry-run) one campaign; inputs are checked before anything is sent.

    `client` reuses an open client (an app embedding campaigns); by default one is made
    from the options and closed at the end.
    """
    with contextlib.ExitStack() as stack:
        journal_path = options.journal
        if journal_path is None:
            journal_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "j.sqlite3"
        journal = Journal(journal_path)
        stack.callback(journal.close)
        resumed = journal.bind(
            {
                "message_sha256": message_digest(options.message),
                "recipients_sha256": file_digest(options.recipients),
            }
        )
        if not journal.loaded:
            journal.load(iter_recipients(options.recipients))
        keep = options.journal
        if options.dry_run:
            counts = journal.counts()
            valid = counts.get("pending", 0)
            rate = options.rate
            return CampaignReport(
                counts=counts,
                failures=journal.failures(),
                resumed=resumed,
                journal=keep,
                dry_run=True,
                valid=valid,
                projected_seconds=valid / rate if rate else None,
            )
        journal.settle_interrupted(resend_ambiguous=options.resend_ambiguous)
        async with contextlib.AsyncExitStack() as clients:
            if client is None:
                assert options.app_id is not None
                assert options.token is not None
                client = await clients.enter_async_context(
                    AsyncGupshupClient(
                        options.app_id,
                        options.token,
                        base_url=options.base_url,
                        timeout=options.timeout,
                        max_retries=options.max_retries,
                    )
                )
            if options.media is not None and journal.counts().get("pending", 0):
                options = await _with_uploaded_media(options, client)
            report = await _send_pending(options, client, journal, display, resumed)
        report.journal = keep
        if options.results is not None:
            write_results(journal, options.results)
            report.results = options.results
        return report
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack never swallows


async def _with_uploaded_media(
    options: CampaignOptions, client: AsyncGupshupClient
) -> CampaignOptions:
    """Upload `--media` once; every recipient then gets the media id in place of the placeholder.

    A resumed run uploads again (the journal keeps the file's digest, not the media id).
    """
    assert options.media is not None
    assert options.media_type is not None
    media_id = await client.upload_media(options.media, options.media_type)
    message = options.message.model_copy(update={"id": media_id})
    return dataclasses.replace(options, message=message)


async def _send_pending(
    options: CampaignOptions,
    client: AsyncGupshupClient,
    journal: Journal,
    display: ProgressDisplay,
    resumed: bool,
) -> CampaignReport:
    before = journal.counts()
    todo = before.get("pending", 0)
    done_before = sum(before.values()) - todo
    latencies = LatencyHistogram()
    sent = finished = 0

    fatal: list[GupshupError] = []

    def on_result(outcome: Outcome) -> None:
        nonlocal sent, finished
        if isinstance(outcome.error, FATAL_ERRORS):
            # Every other recipient would fail the same way: keep this one pending, stop.
            fatal.append(outcome.error)
            outcome = dataclasses.replace(outcome, status="not_sent")
        journal.record(outcome)
        if outcome.status == "not_sent":
            return
        finished += 1
        if outcome.status == "sent":
            sent += 1
            latencies.add(outcome.latency)
        display.advance(outcome)

    interrupted = False
    started = time.monotonic()
    sender = BulkSender(
        client,
        rate=options.rate,
        burst=options.burst,
        concurrency=options.concurrency,
        on_result=on_result,
        before_send=journal.mark_sending,
        deduplicate=False,  # the journal refused repeats when it loaded the file
    )
    display.start(total=todo, already_done=done_before, resumed=resumed)
    try:
        with _cancel_on_signals():
            # Results go to the journal as they come (on_result); holding them all,
            # as send() does, would cost ~1.7 KB a recipient (1.7 GB for a million).
            outcomes = sender.outcomes(
                journal.pending(), options.message, biz_opaque_callback_data=_tagger(journal)
            )
            async with contextlib.aclosing(outcomes):  # closed at once, not by the GC later
                async for _ in outcomes:
                    if fatal:
                        break  # closing the stream stops the run; requests in flight finish
    except asyncio.CancelledError:
        interrupted = True
    finally:
        journal.flush()
        display.stop()
    elapsed = time.monotonic() - started
    return CampaignReport(
        counts=journal.counts(),
        failures=journal.failures(),
        resumed=resumed,
        sent_this_run=sent,
        finished_this_run=finished,
        elapsed=elapsed,
        latencies=latencies,
        interrupted=interrupted,
        rate_cuts=sender.rate_cuts,
        stopped_by=str(fatal[0]) if fatal else None,
    )


def _tagger(journal: Journal) -> Callable[[str], str | None]:
    """Each send's `biz_opaque_callback_data`: the campaign's tag and the recipient's row, so
    a status webhook settles the row even when the send's answer was lost."""
    tag = journal.callback_tag

    def tag_of(recipient: str) -> str | None:
        row = journal.row_of(recipient)
        return callback_key(tag, row) if row is not None else None

    return tag_of


@contextlib.contextmanager
def _cancel_on_signals() -> Iterator[None]:
    """First Ctrl-C (or SIGTERM) cancels the send so in-flight requests finish and are recorded;
    a second one falls back to Python's default and stops at once."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    installed: list[signal.Signals] = []

    def cancel(signum: signal.Signals) -> None:
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(signum)
        if task is not None:
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, cancel, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            pass
    try:
        yield
    finally:
        for signum in installed:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)


def write_results(journal: Journal, path: Path) -> int:
    """Rewrite `path` as JSON Lines from the journal: every final result, in file order."""
    temporary = path.with_name(path.name + ".tmp")
    count = 0
    with temporary.open("w", encoding="utf-8") as handle:
        for result in journal.results():
            handle.write(json.dumps(result, ensure_ascii=False) + "\n")
            count += 1
    temporary.replace(path)
    return count
