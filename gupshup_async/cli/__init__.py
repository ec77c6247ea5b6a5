"""The `gupshup-async` console script: `campaign`, `worker`, `report`, `webhooks serve`, `demo`
and `mock`.

Exit status of `campaign`:
  0    every recipient has a final result (failures are listed, not fatal)
  1    the credentials were refused (401/403); the rest is pending
  2    bad usage or input, or the journal is in use; nothing sent
  3    the API could not be used (20 sends in a row failed without a word about their
       recipients, or got no answer, or such failures left recipients pending); the rest is
       pending
  4    the journal or the results file could not be written (disk full): free space, run
       again; with --enqueue, the Postgres database could not be used
  130  interrupted (SIGINT, Ctrl-C)
  143  terminated (SIGTERM)
Every status but 0 and 2 is resumed by running the same command again.
The token comes from the environment only (`GUPSHUP_APP_TOKEN`): flags leak into shell
history and `ps`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._bulk import DEFAULT_CONCURRENCY, DEFAULT_RATE
from .._client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, check_app_id, check_token
from .._version import __version__
from ..journal import CampaignMismatchError, JournalBusyError
from ._campaign import CampaignOptions, Terminated, run_campaign
from ._inputs import InputError, load_media_message, load_message
from ._progress import ProgressDisplay
from ._worker import add_worker_parser, enqueue, is_postgres_url, run_worker

EXIT_OK = 0
EXIT_STOPPED = 1
EXIT_USAGE = 2
EXIT_API_UNUSABLE = 3
EXIT_STORAGE = 4
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143
#: The campaign's exit statuses in one line, for every help text that lists them.
EXIT_STATUS_LINE = (
    "0 every recipient has a final result, 1 credentials refused (401/403), 2 bad usage or "
    "input or journal in use (nothing sent), 3 the API could not be used, 4 the journal or "
    "results file (or --enqueue's database) could not be written, 130 interrupted (SIGINT), "
    "143 terminated (SIGTERM)."
)

#: A campaign is a batch job: retrying what surely did not deliver a few more times than a
#: web request would is cheap, and a "failed" recipient needs a new campaign.
CAMPAIGN_MAX_RETRIES = 5

TOKEN_ENV = "GUPSHUP_APP_TOKEN"
APP_ID_ENV = "GUPSHUP_APP_ID"
BASE_URL_ENV = "GUPSHUP_BASE_URL"


def _number_type(
    convert: Callable[[str], Any], accept: Callable[[Any], bool], wanted: str
) -> Callable[[str], Any]:
    """An argparse type whose refusal reads "must be <wanted>, got 'x'" (no function names)."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    return parse


_positive_float = _number_type(float, lambda v: v > 0 and v != float("inf"), "a number > 0")
_non_negative_float = _number_type(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
_non_negative_int = _number_type(int, lambda v: v >= 0, "a whole number >= 0")
_positive_int = _number_type(int, lambda v: v >= 1, "a whole number >= 1")
_port = _number_type(int, lambda v: 0 <= v <= 65535, "a port number from 0 to 65535")
_any_int = _number_type(int, lambda v: True, "a whole number")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="gupshup-async",
        description="Send WhatsApp campaigns through Gupshup's v3 API.",
        epilog=f"campaign exit status: {EXIT_STATUS_LINE}",
    )
    parser.add_argument("--version", action="version", version=f"gupshup-async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_campaign_parser(commands)
    add_worker_parser(commands)
    _add_demo_parser(commands)
    _add_mock_parser(commands)
    _add_delivery_commands(commands)  # `report` (SQLite funnel or Postgres counts), `webhooks`
    return parser


def _add_campaign_parser(commands: Any) -> None:
    campaign = commands.add_parser(
        "campaign",
        help="send one message to every number of a file",
        description=f"Send one message to every number of a file. The token is read from "
        f"${TOKEN_ENV} only. Exit status: {EXIT_STATUS_LINE}",
    )
    campaign.add_argument(
        "recipients",
        metavar="RECIPIENTS",
        type=Path,
        help="a CSV (delimiter , ; tab or | sniffed; phone column found by its header) or "
        "one number per line",
    )
    what = campaign.add_mutually_exclusive_group()
    what.add_argument("--text", help="send a text message with this body (with --media: caption)")
    what.add_argument(
        "--message-file", type=Path, help="JSON file with one message in the API's shape"
    )
    campaign.add_argument(
        "--media",
        type=Path,
        default=None,
        help="send this file (image, video, audio, document, webp sticker): uploaded once, "
        "then every recipient gets its media id",
    )
    campaign.add_argument(
        "--column",
        metavar="NAME|N",
        default=None,
        help="the phone column: a header name or a 1-based number (default: found by its "
        "header: phone, mobile, msisdn, whatsapp number...)",
    )
    campaign.add_argument(
        "--encoding",
        default="utf-8-sig",
        help="the recipients file's encoding, e.g. cp1252 or latin-1 (default UTF-8, BOM or not)",
    )
    campaign.add_argument(
        "--allow-invalid",
        action="store_true",
        help="send to the valid numbers even when most of the first rows are invalid",
    )
    campaign.add_argument(
        "--rate",
        type=_positive_float,
        default=DEFAULT_RATE,
        help="messages per second (default 80)",
    )
    campaign.add_argument(
        "--burst", type=_positive_int, default=None, help="token bucket size (default rate/10)"
    )
    campaign.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        help="requests in flight (default 64)",
    )
    campaign.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=CAMPAIGN_MAX_RETRIES,
        help=f"retries of sends that surely did not deliver: 429, 503, refused connections "
        f"(default {CAMPAIGN_MAX_RETRIES}); ambiguous outcomes are never retried",
    )
    campaign.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        help="deadline of each send attempt in seconds: connect, write and the whole answer "
        "(default 10)",
    )
    campaign.add_argument(
        "--journal",
        default=None,
        help="SQLite journal file (makes the run resumable; one process at a time), "
        "or a postgresql:// URL with --enqueue (default there: $GUPSHUP_DATABASE_URL, which "
        "keeps a password out of `ps`)",
    )
    campaign.add_argument(
        "--enqueue",
        action="store_true",
        help="store the campaign in Postgres for `gupshup-async worker` and return",
    )
    campaign.add_argument(
        "--token-env",
        default=None,
        metavar="VAR",
        help=f"with --enqueue: the variable workers read the token from (default {TOKEN_ENV})",
    )
    campaign.add_argument(
        "--results", type=Path, default=None, help="write one JSON line per recipient here"
    )
    campaign.add_argument("--base-url", default=None, help=f"API base URL (or ${BASE_URL_ENV})")
    campaign.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="accept a plain http:// base URL to a host that is not loopback: the token then "
        "travels unencrypted (refused without this flag; loopback http is always accepted). "
        "With --enqueue, workers need it too",
    )
    campaign.add_argument("--app-id", default=None, help=f"Gupshup app id (or ${APP_ID_ENV})")
    campaign.add_argument("--dry-run", action="store_true", help="validate and count, send nothing")
    campaign.add_argument(
        "--resend-ambiguous",
        action="store_true",
        help="on resume, send again to recipients that may have received it",
    )
    campaign.add_argument(
        "--retry-failed",
        action="store_true",
        help="on resume, send again to recipients whose send surely failed (never the "
        "ambiguous ones)",
    )
    campaign.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force the progress bar on or off (default: on for a terminal)",
    )


def _add_demo_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="a 5 000-recipient campaign against the embedded mock",
        description="Start the mock Gupshup API on a free loopback port and run a campaign "
        "against it through the real command path: a few 429s with Retry-After, some 503s, "
        "one ambiguous 504, invalid and repeated numbers. No credentials, no network. "
        "Needs the mock extra: pip install 'gupshup-async[cli]'.",
    )
    demo.add_argument(
        "--recipients", type=_positive_int, default=5000, help="how many (default 5000)"
    )
    demo.add_argument(
        "--rate", type=_positive_float, default=500.0, help="messages per second (default 500)"
    )
    demo.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight (default {DEFAULT_CONCURRENCY})",
    )
    demo.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force the progress bar on or off (default: on for a terminal)",
    )


def _add_mock_parser(commands: Any) -> None:
    from ..mock._faults import FAULT_KINDS

    kinds = ", ".join(sorted(FAULT_KINDS - {"ok"}))
    mock = commands.add_parser(
        "mock",
        help="serve the mock Gupshup API on a loopback port",
        description="Serve the mock Gupshup API (the v3 send endpoint and the partner login, "
        "token, media and read-receipt endpoints) until Ctrl-C; it prints the "
        "base URL and the credentials to export. Counts per recipient at "
        "GET /_mock/stats. Needs the mock extra: pip install 'gupshup-async[mock]'.",
    )
    mock.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    mock.add_argument(
        "--port", type=_port, default=8080, help="port to bind (default 8080; 0: any free port)"
    )
    mock.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        help="throttle (429) above this many sends per second (default: never)",
    )
    mock.add_argument(
        "--burst",
        type=_positive_float,
        default=None,
        help="sends allowed at once above --rate (default rate/10)",
    )
    mock.add_argument("--token", default=None, help="token to accept (default: mock-token)")
    mock.add_argument("--app-id", default=None, help="app id to accept (default: mock-app)")
    mock.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=P",
        help=f"inject a fault with probability P, e.g. 429=0.05 (repeatable); kinds: {kinds}",
    )
    mock.add_argument(
        "--retry-after",
        default=None,
        help="Retry-After sent on 429s: seconds, or 'date' for an HTTP date (default: none)",
    )
    mock.add_argument(
        "--latency",
        type=_non_negative_float,
        default=0.0,
        help="seconds added to every answer (default 0)",
    )
    mock.add_argument(
        "--slow-seconds",
        type=_non_negative_float,
        default=30.0,
        help="how long a 'slow' fault takes, in seconds (default 30)",
    )
    mock.add_argument(
        "--seed", type=_any_int, default=0, help="seed of the fault draws (default 0)"
    )


def _add_delivery_commands(commands: Any) -> None:
    """`webhooks serve` and `report`: the delivery side, in their own modules."""
    from ._report import add_report_parser
    from ._webhooks import add_webhooks_parser

    add_webhooks_parser(commands)
    add_report_parser(commands)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if hasattr(args, "run"):  # subcommands that name their own entry point
        return int(args.run(args))
    if args.command == "mock":
        from ._mock_command import serve_mock

        return serve_mock(args)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(args)
    if args.command == "worker":
        return run_worker(args)
    if args.enqueue:
        return enqueue(
            args,
            app_id=args.app_id or os.environ.get(APP_ID_ENV),
            base_url=args.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
        )
    return _campaign(args)


def campaign_options(args: argparse.Namespace) -> CampaignOptions:
    """The campaign's options from its parsed arguments and the environment; `InputError`
    (or `ValueError`) for a message that cannot be read."""
    media_type = None
    if args.media is not None:
        if args.message_file is not None:
            raise InputError("--media goes with --text (a caption) or alone, not --message-file")
        message, media_type = load_media_message(args.media, args.text)
    else:
        message = load_message(args.text, args.message_file)
    return CampaignOptions(
        recipients=args.recipients,
        message=message,
        app_id=args.app_id or os.environ.get(APP_ID_ENV),
        token=os.environ.get(TOKEN_ENV),
        base_url=args.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
        rate=args.rate,
        burst=args.burst,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
        journal=Path(args.journal) if args.journal else None,
        results=args.results,
        dry_run=args.dry_run,
        resend_ambiguous=args.resend_ambiguous,
        retry_failed=args.retry_failed,
        encoding=args.encoding,
        column=args.column,
        allow_invalid=args.allow_invalid,
        media=args.media,
        media_type=media_type,
        allow_insecure_http=args.allow_insecure_http,
    )


def _campaign(args: argparse.Namespace) -> int:
    display = ProgressDisplay(enabled=args.progress)
    try:
        options = campaign_options(args)
        if is_postgres_url(args.journal):
            raise InputError(
                "a Postgres journal is run by workers: add --enqueue, then run "
                "`gupshup-async worker`"
            )
        if not args.dry_run:
            if not options.token:
                raise InputError(f"set the app token in ${TOKEN_ENV} (it is never taken as a flag)")
            if not options.app_id:
                raise InputError(f"give --app-id or set ${APP_ID_ENV}")
            check_app_id(options.app_id)
            check_token(options.token)
        return run_and_report(options, display)
    except (InputError, CampaignMismatchError, JournalBusyError, ValueError) as problem:
        print(f"gupshup-async: error: {problem}", file=sys.stderr)
        return EXIT_USAGE


def run_and_report(options: CampaignOptions, display: ProgressDisplay) -> int:
    """Run the campaign in a fresh event loop, print the summary, return the exit status."""
    try:
        with _sigterm_raises():
            report = asyncio.run(run_campaign(options, display))
    except (KeyboardInterrupt, Terminated) as stop:  # outside sending: loading resumes too
        display.print("Stopped before the end; run the same command again to resume.")
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    except (sqlite3.Error, OSError) as problem:  # a full disk: each send was marked before it
        print(
            f"gupshup-async: error: the journal or the results file could not be written "
            f"({problem}); sending stopped, what may have gone out is kept as such: free "
            "space and run the same command again",
            file=sys.stderr,
        )
        return EXIT_STORAGE
    display.summary(report)
    if report.interrupted:
        return EXIT_TERMINATED if report.interrupted_by == signal.SIGTERM else EXIT_INTERRUPTED
    if report.stop is not None:
        if report.stop.credentials:
            display.print(
                "Nothing more was sent: fix the credentials and run the same command again."
            )
            return EXIT_STOPPED
        display.print(
            "Nothing more was sent: check --base-url, the network and the account, then run "
            "the same command again (the rest is pending)."
        )
        return EXIT_API_UNUSABLE
    return EXIT_OK


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises `Terminated` (exit 143 after a clean close) instead of killing outright;
    while sending, the campaign's own handler takes over and stops gracefully."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated
