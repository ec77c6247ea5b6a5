"""Campaigns on Postgres from the command line: `campaign --enqueue`, `worker`, `report URL`.

`campaign ... --journal postgresql://... --enqueue` stores the campaign (creating or upgrading
the schema) and returns; `worker --journal postgresql://...` runs stored campaigns until
stopped; `report postgresql://... [--campaign ID] --json` reads them back. The database URL can
come from $GUPSHUP_DATABASE_URL instead (`report` for Postgres is in `_report_postgres`). Needs
the `postgres` extra (psycopg).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from typing import TYPE_CHECKING, Any

from .._client import check_app_id
from ._campaign import message_digest
from ._inputs import InputError, check_base_url_input, file_digest, load_message
from ._recipients_file import RecipientsFile, inspect_recipients

DATABASE_URL_ENV = "GUPSHUP_DATABASE_URL"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
if TYPE_CHECKING:
    from .._scaleout import Worker

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_postgres_url(target: str | None) -> bool:
    """Whether a `--journal` (or report) argument names a Postgres database."""
    return target is not None and target.startswith(POSTGRES_SCHEMES)


def add_worker_parser(commands: Any) -> None:
    """The `worker` subcommand's arguments."""
    from ..journal.leases import DEFAULT_LEASE_SECONDS

    worker = commands.add_parser(
        "worker",
        help="run the campaigns stored in Postgres until stopped",
        description="Takes apps with ready campaigns (one worker per app at a time) and sends "
        "them at each campaign's rate; tokens come from the variables the campaigns name. "
        "A database that does not answer (yet) is tried again every few seconds.",
        epilog="exit status: 0 stopped (SIGINT, SIGTERM, or idle with --exit-when-idle), 2 bad "
        "usage, 4 the database can never be used as given (credentials refused, no such role "
        "or database, a newer schema).",
    )
    worker.add_argument(
        "--journal", default=None, help=f"postgresql:// URL (or ${DATABASE_URL_ENV})"
    )
    worker.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE_SECONDS,
        help="seconds an app waits for a dead worker before another takes it (default 30)",
    )
    worker.add_argument("--max-apps", type=int, default=None, help="apps hosted at once (no cap)")
    worker.add_argument("--name", default=None, help="this worker's name in leases and logs")
    worker.add_argument(
        "--tick",
        type=float,
        default=0.01,
        help="seconds between the shared pacing ticks of all hosted apps (0: a timer per app)",
    )
    worker.add_argument(
        "--exit-when-idle", action="store_true", help="stop once no campaign is ready"
    )
    worker.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="run campaigns whose base URL is plain http:// to a host that is not loopback: "
        "their tokens then travel unencrypted (without it such a campaign is stopped, "
        "naming why)",
    )


def database_url(
    given: str | None, *, flag: str = "--journal", wanted: str = "a postgresql:// URL"
) -> str:
    """The Postgres URL from the command line (`flag`) or else $GUPSHUP_DATABASE_URL, where a
    password stays out of `ps`; `InputError` when neither is one. Never quotes the URL."""
    url = given or os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise InputError(f"give {flag} ({wanted}) or set ${DATABASE_URL_ENV}")
    if not is_postgres_url(url):
        source = url_source(given, flag)
        raise InputError(f"{source} must be a postgresql:// URL here, got {url.split(':')[0]}:")
    return url


def url_source(given: str | None, flag: str) -> str:
    """Where `database_url` took the URL from, as the operator wrote it: `flag` (the option or
    argument) when given, else the variable."""
    return flag if given else f"${DATABASE_URL_ENV}"


def checked_url(url: str, source: str) -> str:
    """`url` once libpq can parse it; `InputError` naming `source` (where the URL came from,
    see `url_source`) otherwise, never quoting it (libpq's own message repeats the token it
    cannot read, which can be the password)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except Exception:
        raise InputError(
            f"{source} is not a valid postgresql:// URL (not shown: it may hold a password)"
        ) from None
    return url


def redacted(text: str, url: str) -> str:
    """`text` with the URL's password (as written and decoded) replaced by `***`."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    for form in {password or "", unquote(password or "")} - {""}:
        text = text.replace(form, "***")
    return text


def _driver_missing() -> bool:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print(
            "gupshup-async: error: Postgres needs its driver: "
            "pip install 'gupshup-async[postgres]'",
            file=sys.stderr,
        )
        return True
    return False


def _unusable_url(url: str, source: str) -> int | None:
    """Exit status 2 (said in one line) when Postgres cannot be asked at all: no driver, or a
    URL libpq cannot parse (named by `source`); None when `url` may be tried."""
    if _driver_missing():
        return 2
    try:
        checked_url(url, source)
    except InputError as problem:
        return _say(problem)
    return None


def _say(problem: object) -> int:
    print(f"gupshup-async: error: {problem}", file=sys.stderr)
    return 2


# ---------------------------------------------------------------- campaign --enqueue


def enqueue(args: argparse.Namespace, *, app_id: str | None, base_url: str) -> int:
    """Store the campaign in Postgres and return; exit 2 on bad input, nothing stored."""
    try:
        url = database_url(args.journal)
        if args.dry_run:
            raise InputError("--dry-run and --enqueue: choose one")
        for flag, given in (("--media", args.media), ("--results", args.results)):
            if given is not None:  # a worker would silently do without it
                raise InputError(f"{flag} is not supported with --enqueue yet")
        if not app_id:
            raise InputError("give --app-id (or set $GUPSHUP_APP_ID)")
        check_app_id(app_id)
        # Checked here, not first by a worker: nothing is stored that no worker should run.
        check_base_url_input(base_url, allow_insecure_http=args.allow_insecure_http)
        token_env = args.token_env or "GUPSHUP_APP_TOKEN"
        if not _ENV_NAME.match(token_env):
            raise InputError(f"--token-env must name an environment variable, got {token_env!r}")
        message = load_message(args.text, args.message_file)
        recipients = inspect_recipients(
            args.recipients,
            encoding=args.encoding,
            column=args.column,
            allow_invalid=args.allow_invalid,
        )
    except (InputError, ValueError) as problem:
        return _say(problem)
    if (status := _unusable_url(url, url_source(args.journal, "--journal"))) is not None:
        return status
    from ..journal.postgres import CampaignSpec

    spec = CampaignSpec(
        app_id=app_id,
        message=message.to_wire(),
        token_env=token_env,
        base_url=base_url,
        rate=args.rate,
        burst=args.burst,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
        message_sha256=message_digest(message),
        recipients_sha256=file_digest(args.recipients),
    )
    import psycopg

    try:
        campaign, created, counts = asyncio.run(_enqueue(url, spec, recipients))
    except InputError as problem:
        return _say(problem)
    except (psycopg.Error, RuntimeError) as failed:  # no database, or a newer schema there
        # A campaign's "journal cannot be written" (exit 4); 1 means refused credentials.
        from . import EXIT_STORAGE

        reason = " ".join(redacted(str(failed), url).split()) or type(failed).__name__
        print(
            f"gupshup-async: error: the Postgres journal could not be used ({reason}): "
            "fix it and run the same command again (enqueueing twice adds nothing)",
            file=sys.stderr,
        )
        return EXIT_STORAGE
    word = "enqueued" if created else "was already enqueued (nothing added)"
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    print(f"campaign {campaign} {word}: {summary}")
    return 0


async def _enqueue(
    url: str, spec: Any, recipients: RecipientsFile
) -> tuple[int, bool, dict[str, int]]:
    from ..journal.postgres import PostgresStore

    async with await PostgresStore.connect(url) as store:
        await store.ensure_schema()
        campaign, created = await store.enqueue(spec, recipients)
        counts = (await store.counts(campaign)).get(campaign, {})
    return campaign, created, counts


# ---------------------------------------------------------------- worker


def run_worker(args: argparse.Namespace) -> int:
    """Run a worker until SIGINT/SIGTERM (exit 0), or until idle with `--exit-when-idle`."""
    try:
        url = database_url(args.journal)
        if not args.lease > 0:
            raise InputError(f"--lease must be > 0 seconds, got {args.lease}")
        if not args.tick >= 0:
            raise InputError(f"--tick must be >= 0 seconds, got {args.tick}")
        if args.max_apps is not None and args.max_apps < 1:
            raise InputError(f"--max-apps must be >= 1, got {args.max_apps}")
    except InputError as problem:
        return _say(problem)
    if (status := _unusable_url(url, url_source(args.journal, "--journal"))) is not None:
        return status
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(_work(url, args))


def worker_from_args(url: str, args: argparse.Namespace) -> Worker:
    """The worker `gupshup-async worker` runs, from its checked arguments."""
    from .._scaleout import Worker

    return Worker(
        url,
        lease_seconds=args.lease,
        max_apps=args.max_apps,
        name=args.name,
        tick=args.tick or None,
        allow_insecure_http=args.allow_insecure_http,
    )


async def _work(url: str, args: argparse.Namespace) -> int:
    """Sessions until stopped: a database that is not reachable (yet) is tried again; one that
    can never work (refused credentials, no such role or database, a newer schema) ends the
    worker with one line and exit 4."""
    import psycopg

    from ..journal.postgres import SchemaTooNewError, permanent_failure

    worker = worker_from_args(url, args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    while not stop.is_set():
        try:
            await worker.run(stop, exit_when_idle=args.exit_when_idle)
        except (psycopg.Error, SchemaTooNewError) as lost:
            if permanent_failure(lost):
                from . import EXIT_STORAGE

                reason = " ".join(redacted(str(lost), url).split()) or type(lost).__name__
                print(
                    f"gupshup-async: error: worker {worker.name}: the Postgres journal cannot "
                    f"be used ({reason}): fix it, then start the worker again",
                    file=sys.stderr,
                )
                return EXIT_STORAGE
            if not isinstance(lost, psycopg.OperationalError):
                raise
            # The session's apps stopped; their leases expire and are taken over (maybe by us).
            logging.getLogger("gupshup_async.worker").warning(
                "database failed: %s", redacted(str(lost), url)
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(5.0, args.lease / 3))
            continue
        if args.exit_when_idle:
            break
    print(f"worker {worker.name}: {worker.sent} sent, {worker.commits} journal commits")
    return 0
