"""The Postgres URL on the command line: read from $GUPSHUP_DATABASE_URL by every command that
takes one (a password on the command line shows in `ps`), its password never printed, and a
database `--enqueue` cannot use is exit 4 (storage), not 1 (refused credentials).

Against the real Postgres of the test session; its cluster trusts local connections, so a
password written into the URL is carried but never checked: exactly what these tests need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import psycopg

from .cli_support import one_error_line

SECRET = "pw-Zq81xKv"
TOKEN_VAR = "URL_TEST_TOKEN"


def _with_password(url: str, *, database: str | None = None) -> tuple[str, str]:
    """`url` with a password (its own when it has one), maybe another database; (url, pw)."""
    parts = urllib.parse.urlsplit(url)
    password = parts.password or SECRET
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:{password}@{host}"
    path = f"/{database}" if database is not None else parts.path
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, path=path)), password


def _cli(*args: str | Path, url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUPSHUP_")}
    if url is not None:
        env["GUPSHUP_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "gupshup_async", *map(str, args)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _enqueue(tmp_path: Path, url: str | None, *extra: str) -> subprocess.CompletedProcess[str]:
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("917000000001\n917000000002\n")
    return _cli(
        "campaign", numbers, "--app-id", "app-a", "--token-env", TOKEN_VAR, "--text", "hi",
        "--base-url", "http://127.0.0.1:9", "--enqueue", *extra, url=url,
    )  # fmt: skip


# ---------------------------------------------------------------- report from the environment


def test_report_reads_the_url_from_the_environment_and_never_prints_its_password(
    database_url: str, tmp_path: Path
) -> None:
    url, password = _with_password(database_url)
    assert _enqueue(tmp_path, url).returncode == 0
    as_json = _cli("report", "--json", url=url)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [(c["id"], c["app_id"], c["pending"]) for c in data["campaigns"]] == [(1, "app-a", 2)]
    as_text = _cli("report", url=url)
    assert as_text.returncode == 0, as_text.stderr
    assert as_text.stdout.splitlines()[0] == "campaign 1 app app-a ready: 2 pending"
    assert "  Recipients: 2" in as_text.stdout.splitlines()  # the funnel follows
    for done in (as_json, as_text):
        assert password not in done.stdout + done.stderr


def test_a_report_error_never_shows_the_environment_urls_password(
    database_url: str,
) -> None:
    # The database is named like the password: libpq's "database ... does not exist" quotes it.
    _, password = _with_password(database_url)
    url, _ = _with_password(database_url, database=password)
    done = _cli("report", "--json", url=url)
    assert done.returncode == 4
    line = one_error_line(done.stderr)
    assert password not in done.stdout + done.stderr
    assert 'database "***" does not exist' in line


def test_a_report_on_an_unreachable_server_is_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql://postgres:{SECRET}@/gupshup?host={tmp_path / 'no-server-here'}"
    done = _cli("report", url=url)
    assert done.returncode == 4
    line = one_error_line(done.stderr)
    assert SECRET not in done.stdout + done.stderr
    assert "no-server-here" in line


def test_report_exits_4_when_the_database_cannot_be_read_as_enqueue_does(
    database_url: str, tmp_path: Path
) -> None:
    missing, _ = _with_password(database_url, database="no_such_database")
    runs = {
        "missing database": _cli("report", missing, "--json", url=None),
        "no server": _cli("report", f"postgresql://postgres@/x?host={tmp_path}", url=None),
    }
    for what, done in runs.items():
        assert done.returncode == 4, (what, done.stderr)
        line = one_error_line(done.stderr)
        assert line.startswith("gupshup-async: error: the Postgres journal could not be read ("), (
            what
        )
    assert 'database "no_such_database" does not exist' in runs["missing database"].stderr


def test_report_still_exits_2_for_bad_arguments(database_url: str) -> None:
    no_campaign = _cli("report", database_url, "--campaign", "7", url=None)
    assert no_campaign.returncode == 2, no_campaign.stderr
    assert one_error_line(no_campaign.stderr) == (
        "gupshup-async: error: no campaign 7 in this database"
    )


def test_report_without_a_journal_or_the_variable_says_both() -> None:
    done = _cli("report", url=None)
    assert done.returncode == 2
    assert one_error_line(done.stderr) == (
        "gupshup-async: error: give JOURNAL (a journal file or a postgresql:// URL) "
        "or set $GUPSHUP_DATABASE_URL"
    )


def test_report_refuses_a_variable_that_is_not_a_postgres_url(tmp_path: Path) -> None:
    done = _cli("report", url=str(tmp_path / "j.sqlite3"))
    assert done.returncode == 2
    assert one_error_line(done.stderr) == (
        "gupshup-async: error: $GUPSHUP_DATABASE_URL must be a postgresql:// URL here, got "
        f"{tmp_path / 'j.sqlite3'}:"
    )


def test_report_help_names_the_variable() -> None:
    done = _cli("report", "--help", url=None)
    assert "Without JOURNAL the Postgres URL is read from $GUPSHUP_DATABASE_URL" in " ".join(
        done.stdout.split()
    )


# ---------------------------------------------------------------- --enqueue: exit 4


def test_enqueue_into_a_database_that_does_not_exist_exits_4_without_the_password(
    database_url: str, tmp_path: Path
) -> None:
    _, password = _with_password(database_url)
    url, _ = _with_password(database_url, database=password)
    done = _enqueue(tmp_path, url)
    assert done.returncode == 4, done.stderr
    line = one_error_line(done.stderr)
    assert password not in done.stdout + done.stderr
    assert line.startswith("gupshup-async: error: the Postgres journal could not be used (")
    assert 'database "***" does not exist' in line
    assert line.endswith("run the same command again (enqueueing twice adds nothing)")


def test_enqueue_to_an_unreachable_server_exits_4_without_the_password(tmp_path: Path) -> None:
    socket_dir = tmp_path / "no-server-here"
    url = f"postgresql://postgres:{SECRET}@/gupshup?host={socket_dir}"
    done = _enqueue(tmp_path, None, "--journal", url)
    assert done.returncode == 4, done.stderr
    line = one_error_line(done.stderr)
    assert SECRET not in done.stdout + done.stderr
    assert "the Postgres journal could not be used (" in line


def test_enqueue_into_a_newer_schema_exits_4(database_url: str, tmp_path: Path) -> None:
    url, password = _with_password(database_url)
    assert _enqueue(tmp_path, url).returncode == 0
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("INSERT INTO gupshup_schema (version) VALUES (99)")
    done = _enqueue(tmp_path, url, "--rate", "5")
    assert done.returncode == 4
    line = one_error_line(done.stderr)
    assert "journal schema is version 99" in line
    assert password not in done.stderr


# ---------------------------------------------------------------- a URL libpq cannot parse

#: libpq cannot decode `%zz`, and its own message would quote it: here, inside the password.
UNPARSABLE = f"postgresql://postgres:{SECRET}%zz@127.0.0.1:9/gupshup"


def _unparsable(source: str) -> str:
    return (
        f"gupshup-async: error: {source} is not a valid postgresql:// URL "
        "(not shown: it may hold a password)"
    )


def test_an_unparsable_url_is_named_by_the_argument_or_variable_it_came_from() -> None:
    runs = {
        "JOURNAL": _cli("report", UNPARSABLE, "--json", url=None),
        "--journal": _cli("worker", "--journal", UNPARSABLE, "--exit-when-idle", url=None),
        "$GUPSHUP_DATABASE_URL": _cli("worker", "--exit-when-idle", url=UNPARSABLE),
    }
    for source, done in runs.items():
        assert done.returncode == 2, (source, done.stderr)
        assert one_error_line(done.stderr) == _unparsable(source)
        assert SECRET not in done.stdout + done.stderr


def test_report_names_the_variable_when_the_unparsable_url_came_from_it() -> None:
    done = _cli("report", url=UNPARSABLE)
    assert done.returncode == 2, done.stderr
    assert one_error_line(done.stderr) == _unparsable("$GUPSHUP_DATABASE_URL")


def test_report_help_lists_its_exit_statuses() -> None:
    done = _cli("report", "--help", url=None)
    assert (
        "exit status: 0 printed, 2 bad usage (or no such journal file or campaign, or a file "
        "that is not a campaign journal), 4 the Postgres database could not be read."
    ) in " ".join(done.stdout.split())
