"""A worker whose database can never work stops (exit 4, one line, no password); one that is
merely not reachable yet is tried again until the worker is stopped.

Against the real Postgres of the test session. Its cluster trusts local connections except
for one role, `gupshup_password_check`, which must give its password (scripts/postgres)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import psycopg
import psycopg.errors
import pytest
from psycopg import sql

from gupshup_async.journal.postgres import SchemaTooNewError, permanent_failure

from .cli_support import one_error_line

PASSWORD_ROLE = "gupshup_password_check"
RIGHT_PASSWORD = "right-Hq27pw"
WRONG_PASSWORD = "wrong-Zq81xKv"
NAME = "w-failures"


def _as(url: str, *, user: str, password: str | None = None, database: str | None = None) -> str:
    """`url` for another user (and password, database) on the same server."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:{password}@{host}" if password is not None else f"{user}@{host}"
    path = f"/{database}" if database is not None else parts.path
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, path=path))


@pytest.fixture(scope="module")
def password_role(postgres_server: str) -> str:
    """The URL of the role that must give its password, with the right one."""
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PASSWORD_ROLE,))
        verb = "ALTER" if found.fetchone() else "CREATE"
        admin.execute(
            sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                sql.SQL(verb), sql.Identifier(PASSWORD_ROLE), sql.Literal(RIGHT_PASSWORD)
            )
        )
    return _as(postgres_server, user=PASSWORD_ROLE, password=RIGHT_PASSWORD)


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUPSHUP_")}
    env["GUPSHUP_DATABASE_URL"] = url
    return env


def _worker_command() -> list[str]:
    # A short lease: a database that fails is tried again every half second.
    return [sys.executable, "-m", "gupshup_async", "worker", "--lease", "1.5", "--name", NAME]


def _run_worker(url: str) -> subprocess.CompletedProcess[str]:
    """The worker, run until it exits on its own; fails the test if it is still retrying."""
    try:
        return subprocess.run(
            _worker_command(), env=_env(url), capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired as still:
        tail = (still.stderr or b"")[-300:]
        pytest.fail(f"the worker was still retrying after 30 s: ...{tail!r}")


def _says_unusable(done: subprocess.CompletedProcess[str], why: str) -> None:
    assert done.returncode == 4, done.stderr
    line = one_error_line(done.stderr)
    assert line.startswith(
        f"gupshup-async: error: worker {NAME}: the Postgres journal cannot be used ("
    ), line
    assert why in line, line
    assert line.endswith("): fix it, then start the worker again"), line
    assert "database failed" not in done.stderr  # not one retry


# ---------------------------------------------------------------- never works: exit 4


def test_a_refused_password_stops_the_worker_with_exit_4(password_role: str) -> None:
    with psycopg.connect(password_role) as right:  # the role works with its password...
        assert right.execute("SELECT current_user").fetchone() == (PASSWORD_ROLE,)
    wrong = password_role.replace(RIGHT_PASSWORD, WRONG_PASSWORD)
    done = _run_worker(wrong)  # ...and not without it
    _says_unusable(done, f'password authentication failed for user "{PASSWORD_ROLE}"')
    assert WRONG_PASSWORD not in done.stdout + done.stderr


def test_a_database_that_does_not_exist_stops_the_worker_with_exit_4(
    postgres_server: str,
) -> None:
    missing = f"missing_{uuid.uuid4().hex[:8]}"
    done = _run_worker(_as(postgres_server, user="postgres", database=missing))
    _says_unusable(done, f'database "{missing}" does not exist')


def test_a_role_that_does_not_exist_stops_the_worker_with_exit_4(postgres_server: str) -> None:
    done = _run_worker(_as(postgres_server, user="no_such_role", password=WRONG_PASSWORD))
    _says_unusable(done, 'role "no_such_role" does not exist')
    assert WRONG_PASSWORD not in done.stdout + done.stderr


def test_a_newer_schema_stops_the_worker_with_exit_4(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("CREATE TABLE gupshup_schema (version INTEGER NOT NULL)")
        db.execute("INSERT INTO gupshup_schema (version) VALUES (99)")
    done = _run_worker(database_url)
    _says_unusable(
        done,
        "the database's journal schema is version 99, newer than this gupshup-async's 2: "
        "upgrade gupshup-async",
    )


# ---------------------------------------------------------------- not reachable yet: retried


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_closed_port_is_retried_until_the_worker_is_stopped(tmp_path: Path) -> None:
    url = f"postgresql://postgres:{WRONG_PASSWORD}@127.0.0.1:{_closed_port()}/postgres"
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            _worker_command(), env=_env(url), stdout=subprocess.PIPE, stderr=out, text=True
        )
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("database failed:") < 3 and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()  # it must not give up on its own
            time.sleep(0.1)
        assert log.read_text().count("database failed:") >= 3, log.read_text()
        assert worker.poll() is None, log.read_text()
        worker.send_signal(signal.SIGTERM)
        stdout, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, log.read_text()
    assert stdout == f"worker {NAME}: 0 sent, 0 journal commits\n"
    assert "Connection refused" in log.read_text()
    assert WRONG_PASSWORD not in stdout + log.read_text()


# ---------------------------------------------------------------- the rule itself


def _refused(server_says: str) -> psycopg.OperationalError:
    """A refused connection as psycopg raises it: no SQLSTATE, libpq's words."""
    return psycopg.OperationalError(
        'connection failed: connection to server on socket "/run/pg/.s.PGSQL.5432" failed: '
        + server_says
    )


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (_refused('FATAL:  password authentication failed for user "app"'), True),
        (_refused('FATAL:  Peer authentication failed for user "app"'), True),
        (_refused('FATAL:  database "shop" does not exist'), True),
        (_refused('FATAL:  role "app" does not exist'), True),
        (_refused('FATAL:  role "app" is not permitted to log in'), True),
        (_refused('FATAL:  permission denied for database "shop"'), True),
        (_refused('FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "app"'), True),
        (_refused("fe_sendauth: no password supplied"), True),
        (psycopg.errors.InvalidPassword("password authentication failed"), True),
        (psycopg.errors.InvalidCatalogName("database does not exist"), True),
        (psycopg.errors.InsufficientPrivilege("permission denied for schema public"), True),
        (SchemaTooNewError("the database's journal schema is version 3"), True),
        (_refused("FATAL:  the database system is starting up"), False),
        (_refused("FATAL:  the database system is shutting down"), False),
        (_refused("FATAL:  sorry, too many clients already"), False),
        (_refused("Connection refused\n\tIs the server running on that host?"), False),
        (_refused("server closed the connection unexpectedly"), False),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), False),
        (psycopg.errors.AdminShutdown("terminating connection"), False),
        (psycopg.errors.TooManyConnections("too many clients"), False),
        (psycopg.OperationalError("consuming input failed: EOF detected"), False),
        (psycopg.errors.UndefinedObject('role "x" does not exist'), False),  # a query's, 42704
        (RuntimeError("anything else"), False),
    ],
)
def test_only_failures_no_retry_can_fix_are_permanent(
    error: BaseException, permanent: bool
) -> None:
    assert permanent_failure(error) is permanent


def test_worker_help_lists_its_exit_statuses() -> None:
    done = subprocess.run(
        [*_worker_command()[:4], "--help"], capture_output=True, text=True, timeout=60
    )
    assert (
        "exit status: 0 stopped (SIGINT, SIGTERM, or idle with --exit-when-idle), 2 bad usage, "
        "4 the database can never be used as given (credentials refused, no such role or "
        "database, a newer schema)."
    ) in " ".join(done.stdout.split())
