"""The campaign: load the recipients into the journal, send what is pending, report.

A failure that says nothing about its recipient (`_verdict`: no connection, refused
credentials, an account problem, a wrong endpoint, a 503 or the account's throttling past its
retries) never makes the recipient final: it goes back to pending.
A refused token stops the campaign at once; `CHANNEL_FAILURE_LIMIT` such failures in a row
(connection refused, DNS, TLS, wallet low...) stop it too: the rest stays pending for a rerun.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .._bulk import BulkSender, Outcome
from .._client import AsyncGupshupClient, encode_message
from .._messages import Message
from .._verdict import account_code, refuses_credentials, says_nothing_about_recipient
from ..journal import Journal
from ..webhooks.reconcile import callback_key
from ._inputs import (
    check_base_url_input,
    check_distinct_paths,
    check_journal_path,
    check_results_path,
    file_digest,
)
from ._latency import LatencyHistogram
from ._progress import ProgressDisplay, Throttling
from ._recipients_file import inspect_recipients

#: This many failures in a row that say nothing about their recipients (each after its own
#: retries) stop the campaign: the API cannot be used (wrong URL, network, wallet). Twenty
#: is well past a blip, and a minute or less of retries at a closed port (measured: ~10 s).
CHANNEL_FAILURE_LIMIT = 20


class Terminated(BaseException):
    """SIGTERM outside the sending phase (loading, writing results): stop like Ctrl-C."""


@dataclass(frozen=True)
class Stop:
    """Why a campaign stopped early: refused credentials, or an API that could not be used."""

    credentials: bool
    reason: str


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
    retry_failed: bool = False
    show_progress: bool | None = None
    encoding: str = "utf-8-sig"
    column: str | None = None
    allow_invalid: bool = False
    media: Path | None = None  # uploaded once before sending; `message` holds its placeholder id
    media_type: str | None = None
    allow_insecure_http: bool = False  # plain http to a host that is not loopback


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
    interrupted_by: int | None = None  # the signal number, when a signal stopped the run
    journal: Path | None = None
    results: Path | None = None
    throttling: Throttling = field(default_factory=Throttling)
    dry_run: bool = False
    valid: int = 0
    projected_seconds: float | None = None
    stop: Stop | None = None  # why sending stopped before the end (401/403, unusable API)
    read_as: str = ""

    @property
    def rate_cuts(self) -> int:
        """How many times throttling halved the rate in this run."""
        return self.throttling.rate_cuts

    @property
    def stopped_by(self) -> str | None:
        """The reason sending stopped early, or None."""
        return self.stop.reason if self.stop else None

    @property
    def achieved_rate(self) -> float:
        """Requests finished per second of sending in this run."""
        return self.finished_this_run / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        """Latency percentile `q` (0-100) in seconds over this run's sends (within 2%)."""
        return self.latencies.percentile(q)


class ChannelWatch:
    """Keeps recipients pending when their failure is about the channel, and says when to stop.

    A refused token stops at once; `CHANNEL_FAILURE_LIMIT` such failures in a row stop too.
    Any other answer (a success, a failure about the recipient) resets the run.
    """

    def __init__(self) -> None:
        self.in_a_row = 0
        self.kept_pending = 0
        self.last: BaseException | None = None
        self.stop: Stop | None = None

    def judge(self, outcome: Outcome) -> Outcome:
        """`outcome`, or the same as "not_sent" (back to pending) when about the channel.

        An ambiguous outcome stays ambiguous (it may have gone out) but counts in the run: a
        server that takes requests and never answers (or a `--timeout` too short for it)
        would otherwise make every recipient ambiguous.
        """
        if outcome.status == "sent":  # the common case, asked once per recipient
            self.in_a_row = 0
            return outcome
        error = outcome.error
        about_channel = says_nothing_about_recipient(error)
        if outcome.status == "ambiguous" and not about_channel:
            self._count(error)
            return outcome
        if outcome.status not in ("failed", "ambiguous") or not about_channel:
            if outcome.status != "not_sent":
                self.in_a_row = 0
            return outcome
        if self.stop is None and refuses_credentials(error):
            self.stop = Stop(credentials=True, reason=f"the API answered {error}")
        self._count(error)
        self.kept_pending += 1
        # Surely not delivered, and nothing learnt about this recipient: keep it pending.
        return dataclasses.replace(outcome, status="not_sent")

    def _count(self, error: BaseException | None) -> None:
        self.in_a_row += 1
        self.last = error
        if self.stop is None and self.in_a_row >= CHANNEL_FAILURE_LIMIT:
            self.stop = Stop(
                credentials=False,
                reason=f"the API could not be used ({self.in_a_row} sends in a row "
                f"failed: {_explain(error)})",
            )

    def leftover(self) -> Stop | None:
        """After a complete run: the recipients such failures left pending, if any."""
        if not self.kept_pending:
            return None
        return Stop(
            credentials=False,
            reason=f"the API could not be used for {self.kept_pending} recipient(s), left "
            f"pending (last: {_explain(self.last)})",
        )


def _explain(error: BaseException | None) -> str:
    code = account_code(error)
    return f"Gupshup code {code}: {error}" if code is not None else str(error)


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
    # Every input is checked before the journal exists: a mistake leaves nothing behind.
    recipients = inspect_recipients(
        options.recipients,
        encoding=options.encoding,
        column=options.column,
        allow_invalid=options.allow_invalid,
    )
    if client is None:
        check_base_url_input(options.base_url, allow_insecure_http=options.allow_insecure_http)
    check_distinct_paths(
        {"--journal": options.journal, "--results": options.results},
        {"recipients file": options.recipients, "media file": options.media},
    )
    if options.journal is not None:
        check_journal_path(options.journal)
    if options.results is not None:
        check_results_path(options.results)
    with contextlib.ExitStack() as stack:
        journal_path = options.journal
        if journal_path is None:
            journal_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "j.sqlite3"
        journal = Journal(journal_path)  # JournalBusyError when another process holds it
        stack.callback(journal.close)
        resumed = journal.bind(
            {
                "message_sha256": message_digest(options.message),
                "recipients_sha256": file_digest(options.recipients),
            }
        )
        if not journal.loaded:
            journal.load(recipients)
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
                read_as=recipients.describe(),
            )
        journal.settle_interrupted(resend_ambiguous=options.resend_ambiguous)
        if options.retry_failed:
            journal.requeue_failed()
        async with contextlib.AsyncExitStack() as clients:
            if client is None:
                client = await clients.enter_async_context(open_client(options))
            if options.media is not None and journal.counts().get("pending", 0):
                options = await _with_uploaded_media(options, client)
            report = await _send_pending(options, client, journal, display, resumed)
        report.journal = keep
        if options.results is not None:
            write_results(journal, options.results)
            report.results = options.results
        return report
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack never swallows


def open_client(options: CampaignOptions) -> AsyncGupshupClient:
    """The client a campaign sends with, built from its options (nothing is connected yet)."""
    assert options.app_id is not None
    assert options.token is not None
    return AsyncGupshupClient(
        options.app_id,
        options.token,
        base_url=options.base_url,
        timeout=options.timeout,
        max_retries=options.max_retries,
        allow_insecure_http=options.allow_insecure_http,
    )


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
    channel = ChannelWatch()

    def on_result(outcome: Outcome) -> None:
        nonlocal sent, finished
        outcome = channel.judge(outcome)
        journal.record(outcome)
        if outcome.status == "not_sent":
            return
        finished += 1
        if outcome.status == "sent":
            sent += 1
            latencies.add(outcome.latency)
        display.advance(outcome)

    interrupted = False
    signals: list[int] = []
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
    display.start(total=todo, already_done=done_before, resumed=resumed, sender=sender)
    try:
        with _cancel_on_signals(signals):
            # Results go to the journal as they come (on_result) and nowhere else; holding
            # them all, as send() does, would cost ~1.7 KB a recipient (1.7 GB for a million).
            await sender.run(
                journal.pending(),
                options.message,
                biz_opaque_callback_data=_tagger(journal),
                until=lambda: channel.stop is not None,  # requests in flight finish first
            )
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
        interrupted_by=signals[0] if signals else None,
        throttling=Throttling.of(sender),
        stop=channel.stop or (None if interrupted else channel.leftover()),
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
def _cancel_on_signals(received: list[int]) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM) cancels the send so in-flight requests finish and are recorded
    (its number goes to `received`); a second one falls back to the default and stops at once."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    installed: list[signal.Signals] = []

    def cancel(signum: signal.Signals) -> None:
        received.append(int(signum))
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(signum)
        if task is not None:
            task.cancel()

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
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
            # Back to the handler before sending (the CLI's: SIGTERM raises `Terminated`).
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, previous[signum])


def write_results(journal: Journal, path: Path) -> int:
    """Rewrite `path` as JSON Lines from the journal: every final result, in file order."""
    temporary = path.with_name(path.name + ".tmp")
    count = 0
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # a left-over of a killed run, maybe with a wider mode
    # Phone numbers and API answers: readable by the owner only.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "w", encoding="utf-8") as handle:
        for result in journal.results():
            handle.write(json.dumps(result, ensure_ascii=False) + "\n")
            count += 1
    temporary.replace(path)
    return count
