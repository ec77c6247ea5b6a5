"""The `gupshup-async` console script: `campaign`, `worker`, `report`, `webhooks serve`, `demo`
and `mock`.

Exit status: 0 when every recipient has a final result (failures are listed, not fatal),
1 when the API refused the credentials (401/403) and the rest was left pending to resume,
2 for bad usage or unreadable input (before anything is sent), 130 when interrupted.
The token comes from the environment only (`GUPSHUP_APP_TOKEN`): flags leak into shell
history and `ps`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._bulk import DEFAULT_CONCURRENCY, DEFAULT_RATE
from .._client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, check_app_id, check_token
from ..journal import CampaignMismatchError
from ._campaign import CampaignOptions, run_campaign
from ._inputs import InputError, load_media_message, load_message
from ._progress import ProgressDisplay
from ._worker import add_worker_parser, enqueue, is_postgres_url, run_worker

EXIT_OK = 0
EXIT_STOPPED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: A campaign is a batch job: retrying what surely did not deliver a few more times than a
#: web request would is cheap, and a "failed" recipient needs a new campaign.
CAMPAIGN_MAX_RETRIES = 5

TOKEN_ENV = "GUPSHUP_APP_TOKEN"
APP_ID_ENV = "GUPSHUP_APP_ID"
BASE_URL_ENV = "GUPSHUP_BASE_URL"


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="gupshup-async", description="Send WhatsApp campaigns through Gupshup's v3 API."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    campaign = commands.add_parser(
        "campaign",
        help="send one message to every number of a file",
        description=f"The token is read from ${TOKEN_ENV} only.",
    )
    campaign.add_argument(
        "recipients",
        metavar="RECIPIENTS",
        type=Path,
        help="CSV (phone/to/number/msisdn column) or one number per line",
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
        help="seconds to wait for each answer (default 10)",
    )
    campaign.add_argument(
        "--journal",
        default=None,
        help="SQLite journal file (makes the run resumable), or a postgresql:// URL with --enqueue",
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
    campaign.add_argument("--app-id", default=None, help=f"Gupshup app id (or ${APP_ID_ENV})")
    campaign.add_argument("--dry-run", action="store_true", help="validate and count, send nothing")
    campaign.add_argument(
        "--resend-ambiguous",
        action="store_true",
        help="on resume, send again to recipients that may have received it",
    )
    campaign.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force the progress bar on or off",
    )

    add_worker_parser(commands)  # `report` (SQLite funnel or Postgres counts): _report.py

    demo = commands.add_parser("demo", help="a 5 000-recipient campaign against the embedded mock")
    demo.add_argument(
        "--recipients", type=_positive_int, default=5000, help="how many (default 5000)"
    )
    demo.add_argument(
        "--rate", type=_positive_float, default=500.0, help="messages per second (default 500)"
    )
    demo.add_argument("--concurrency", type=_positive_int, default=DEFAULT_CONCURRENCY)
    demo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)

    mock = commands.add_parser("mock", help="serve the mock Gupshup API on a loopback port")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=8080)
    mock.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        help="throttle above this many sends per second",
    )
    mock.add_argument("--burst", type=_positive_float, default=None)
    mock.add_argument("--token", default=None, help="token to accept (default: mock-token)")
    mock.add_argument("--app-id", default=None, help="app id to accept (default: mock-app)")
    mock.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=P",
        help="inject a fault with probability P, e.g. 429=0.05 (repeatable)",
    )
    mock.add_argument("--retry-after", default=None, help="Retry-After on 429s: seconds, or 'date'")
    mock.add_argument("--latency", type=float, default=0.0, help="added latency in seconds")
    mock.add_argument(
        "--slow-seconds", type=float, default=30.0, help="how long a 'slow' fault takes"
    )
    mock.add_argument("--seed", type=int, default=0)
    _add_delivery_commands(commands)
    return parser  # fmt: skip


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


def _campaign(args: argparse.Namespace) -> int:
    display = ProgressDisplay(enabled=args.progress)
    try:
        media_type = None
        if args.media is not None:
            if args.message_file is not None:
                raise InputError(
                    "--media goes with --text (a caption) or alone, not --message-file"
                )
            message, media_type = load_media_message(args.media, args.text)
        else:
            message = load_message(args.text, args.message_file)
        options = CampaignOptions(
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
            media=args.media,
            media_type=media_type,
        )
        if is_postgres_url(args.journal):
            raise InputError(
                "a Postgres journal is run by workers: add --enqueue, then run "
                "`gupshup-async worker`"
            )
        if not options.recipients.is_file():
            raise InputError(f"recipients file {options.recipients} does not exist")
        if not args.dry_run:
            if not options.token:
                raise InputError(f"set the app token in ${TOKEN_ENV} (it is never taken as a flag)")
            if not options.app_id:
                raise InputError(f"give --app-id or set ${APP_ID_ENV}")
            check_app_id(options.app_id)
            check_token(options.token)
        return run_and_report(options, display)
    except (InputError, CampaignMismatchError, ValueError) as problem:
        print(f"gupshup-async: error: {problem}", file=sys.stderr)
        return EXIT_USAGE


def run_and_report(options: CampaignOptions, display: ProgressDisplay) -> int:
    """Run the campaign in a fresh event loop, print the summary, return the exit status."""
    try:
        report = asyncio.run(run_campaign(options, display))
    except KeyboardInterrupt:  # before sending started: loading is resumable too
        display.print("Interrupted before sending; run the same command again to resume.")
        return EXIT_INTERRUPTED
    display.summary(report)
    if report.interrupted:
        return EXIT_INTERRUPTED
    if report.stopped_by:
        display.print("Nothing more was sent: fix the credentials and run the same command again.")
        return EXIT_STOPPED
    return EXIT_OK
