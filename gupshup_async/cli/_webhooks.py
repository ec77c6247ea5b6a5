"""`gupshup-async webhooks serve`: receive Gupshup's callbacks into a campaign journal.

Long-running on purpose: statuses trickle in for days and read receipts come late. The secret
comes from an environment variable (`--secret-env NAME`), never from a flag; without one the
command refuses to start unless an IP allowlist is given. Stop it with Ctrl-C or SIGTERM:
pending commits finish first. The journal is a campaign's SQLite file, or the Postgres database
the workers send from (`--journal postgresql://...` or $GUPSHUP_DATABASE_URL); several
receivers may serve one database at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..webhooks import DEFAULT_SECRET_HEADER, WebhookReceiver

DEFAULT_PORT = 8090


def add_webhooks_parser(commands: Any) -> None:
    """Add `webhooks serve` to the console script's subcommands."""
    webhooks = commands.add_parser("webhooks", help="receive Gupshup's delivery webhooks")
    actions = webhooks.add_subparsers(dest="webhooks_command", required=True)
    serve = actions.add_parser(
        "serve",
        help="store callbacks in a campaign journal and reconcile its delivery statuses",
        description="Answer Gupshup's v3 callbacks (POST), store them in the journal, then 200.",
        epilog="exit status: 0 stopped (SIGINT, SIGTERM), 2 bad usage, 4 the Postgres journal "
        "could not be used at start (unreachable, no such database or role, credentials "
        "refused, a newer schema); once serving, a lost database answers 503 instead.",
    )
    serve.add_argument(
        "--journal",
        default=None,
        type=str,
        help="the campaign's journal file, or a postgresql:// URL (or $GUPSHUP_DATABASE_URL)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"(default {DEFAULT_PORT})")
    serve.add_argument("--path", default="/", help="the path Gupshup posts to (default /)")
    serve.add_argument(
        "--secret-env",
        metavar="NAME",
        default=None,
        help="environment variable holding the shared secret Gupshup sends as a header",
    )
    serve.add_argument(
        "--secret-header",
        default=DEFAULT_SECRET_HEADER,
        metavar="H",
        help=f"the header carrying the secret (default {DEFAULT_SECRET_HEADER})",
    )
    serve.add_argument(
        "--allow-ip",
        action="append",
        default=[],
        metavar="CIDR",
        help="accept callbacks only from here (repeatable)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="CIDR",
        help="a reverse proxy whose X-Forwarded-For names the caller (repeatable)",
    )
    serve.add_argument(
        "--max-body-bytes", type=int, default=1024 * 1024, help="larger bodies get 413 (1 MiB)"
    )
    serve.set_defaults(run=serve_webhooks)


def receiver_config(receiver: WebhookReceiver) -> Any:
    """uvicorn settings for the receiver: the mock's, with lifespan (commits finish at
    shut-down) and without uvicorn's proxy headers, which would trust any X-Forwarded-For
    from 127.0.0.1: the receiver's own `trusted_proxies` is the one rule."""
    from ..mock._server import uvicorn_config

    return uvicorn_config(receiver, lifespan="on", proxy_headers=False)  # type: ignore[arg-type]


class _StoppedError(Exception):
    """SIGTERM, once uvicorn has finished its graceful shutdown."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _StoppedError


def _usage(problem: str) -> int:
    print(f"gupshup-async: error: {problem}", file=sys.stderr)
    return 2


class _UnreachableError(Exception):
    """The Postgres journal cannot be used at start (it does not answer, or holds a newer
    schema): the CLI's "database cannot be used", exit 4, not usage."""


def _journal(given: str | None) -> tuple[str, str]:
    """(the journal, how to show it): a file, or a Postgres URL whose database answers (its
    schema made or upgraded here). `InputError` on bad usage, `_UnreachableError` else."""
    from ._inputs import InputError
    from ._worker import (
        DATABASE_URL_ENV,
        _driver_missing,
        checked_url,
        is_postgres_url,
        redacted,
        url_source,
    )

    journal = given or os.environ.get(DATABASE_URL_ENV)
    if not journal:
        raise InputError(
            f"give --journal FILE or --journal postgresql://... (or set ${DATABASE_URL_ENV})"
        )
    if not is_postgres_url(journal):
        _check_existing_file(Path(journal))
        return journal, journal
    if _driver_missing():
        raise InputError("no Postgres driver")
    checked_url(journal, url_source(given, "--journal"))
    from ..journal._pg_delivery import DeliveryDatabase, safe_url

    async def reachable() -> None:
        database = DeliveryDatabase(journal)
        try:
            await database.delivery()
        finally:
            await database.aclose()

    import psycopg

    from ..journal.postgres import SchemaTooNewError

    try:
        asyncio.run(reachable())
    except (psycopg.Error, SchemaTooNewError) as failed:  # no database, or a newer schema
        reason = " ".join(redacted(str(failed), journal).split()) or type(failed).__name__
        raise _UnreachableError(reason) from None
    return journal, safe_url(journal)


def _check_existing_file(path: Path) -> None:
    """`InputError` for a file that is not a campaign journal, left as it is. A new name or an
    empty file is made into one: the receiver may start before its campaign."""
    from ..journal import CampaignMismatchError
    from ..journal.delivery import check_journal_file
    from ._inputs import InputError

    if path.is_dir():
        raise InputError(f"--journal {path} is a directory; give a file name")
    try:
        if not path.exists() or path.stat().st_size == 0:
            return
        check_journal_file(path, named="--journal")
    except CampaignMismatchError as problem:
        raise InputError(str(problem)) from None
    except OSError as exc:
        raise InputError(f"cannot read journal {path}: {exc.strerror}") from None


def serve_webhooks(args: argparse.Namespace) -> int:
    """Serve the receiver with uvicorn until interrupted; exit 2 on bad usage, 4 when the
    Postgres journal cannot be used at start."""
    secret: str | None = None
    if args.secret_env is not None:
        secret = os.environ.get(args.secret_env) or None
        if secret is None:
            return _usage(f"${args.secret_env} (--secret-env) is unset or empty")
    elif not args.allow_ip:
        return _usage(
            "give --secret-env NAME (a shared secret) or --allow-ip CIDR: "
            "refusing to accept callbacks from anyone"
        )
    from ._inputs import InputError

    try:
        journal, shown = _journal(args.journal)
    except InputError as problem:
        return _usage(str(problem))
    except _UnreachableError as problem:
        from . import EXIT_STORAGE

        print(
            f"gupshup-async: error: the Postgres journal could not be used ({problem}): fix "
            "it, then start webhooks serve again",
            file=sys.stderr,
        )
        return EXIT_STORAGE
    try:
        receiver = WebhookReceiver(
            journal=journal,
            secret=secret,
            secret_header=args.secret_header,
            allow_ips=args.allow_ip,
            trusted_proxies=args.trusted_proxy,
            max_body_bytes=args.max_body_bytes,
            path=args.path,
        )
    except ValueError as problem:
        return _usage(str(problem))
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as problem:
        return _usage(f"cannot listen on {args.host}:{args.port}: {problem}")
    port = sock.getsockname()[1]
    sock.listen(2048)  # callbacks queue from the moment the line below is printed
    auth = f"secret in {args.secret_header}" if secret else "no secret"
    if args.allow_ip:
        auth += f", from {', '.join(args.allow_ip)}"
    print(
        f"Receiving Gupshup webhooks on http://{args.host}:{port}{args.path} "
        f"into {shown} ({auth}); Ctrl-C to stop",
        flush=True,
    )
    server = uvicorn.Server(receiver_config(receiver))
    # uvicorn shuts down gracefully, then raises the signal again: end here, not killed by it.
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        server.run(sockets=[sock])
    except (_StoppedError, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"Stopped: {receiver.stats['events']} new events, "
          f"{receiver.stats['duplicates']} repeats", flush=True)  # fmt: skip
    return 0


class ReceiverThread:
    """A `WebhookReceiver` served by uvicorn on a loopback port in a background thread (the
    demo's receiver; `webhooks serve` is the long-running one)."""

    def __init__(self, receiver: WebhookReceiver, host: str = "127.0.0.1", port: int = 0) -> None:
        self.receiver = receiver
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where to post callbacks."""
        return f"http://{self.host}:{self.port}{self.receiver.path or '/'}"

    def start(self) -> None:
        """Bind a free port and serve; return once it accepts connections."""
        import uvicorn

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(receiver_config(self.receiver))
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])),
            name="gupshup-webhooks",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving (pending commits finish) and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
