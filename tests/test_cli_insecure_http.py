"""`--allow-insecure-http`: the CLI's way to the client's `allow_insecure_http`.

Plain http to a host that is not loopback sends the token in clear text. Without the flag it is
refused (exit 2) before any journal, database row or request exists; with it, the client is
built to accept it. The address below is never contacted: the tests either see the refusal
before any network call, or run with nothing to send, or build a client and close it unused.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from gupshup_async.cli import build_parser

from .cli_support import one_error_line

INSECURE = "http://10.255.255.1"  # not loopback; never contacted
REFUSAL = (
    f"gupshup-async: error: --base-url {INSECURE} would send the token unencrypted to a host "
    "that is not loopback: use https://, or add --allow-insecure-http if you mean it"
)
TOKEN_VAR = "INSECURE_TEST_TOKEN"


def _cli(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUPSHUP_")}
    return subprocess.run(
        [sys.executable, "-m", "gupshup_async", *map(str, args)],
        env={**clean, "GUPSHUP_APP_TOKEN": "sk_test_token", "GUPSHUP_APP_ID": "app", **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def numbers(tmp_path: Path) -> Path:
    path = tmp_path / "to.csv"
    path.write_text("phone\n917000000001\n917000000002\n")
    return path


@pytest.mark.parametrize("dry_run", [False, True])
def test_plain_http_to_another_host_exits_2_before_any_journal(
    numbers: Path, tmp_path: Path, dry_run: bool
) -> None:
    journal = tmp_path / "j.sqlite3"
    extra = ["--dry-run"] if dry_run else []
    done = _cli("campaign", numbers, "--text", "x", "--base-url", INSECURE, "--journal", journal,
                *extra)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert one_error_line(done.stderr) == REFUSAL
    assert not journal.exists()


def test_the_base_url_from_the_environment_is_checked_too(numbers: Path) -> None:
    done = _cli("campaign", numbers, "--text", "x", "--dry-run", GUPSHUP_BASE_URL=INSECURE)
    assert done.returncode == 2
    assert one_error_line(done.stderr) == REFUSAL


def test_with_the_flag_the_check_passes_and_a_dry_run_counts(numbers: Path) -> None:
    done = _cli("campaign", numbers, "--text", "x", "--base-url", INSECURE, "--dry-run",
                "--allow-insecure-http")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "to send      2" in done.stdout


async def test_with_the_flag_the_campaign_client_accepts_plain_http(
    numbers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gupshup_async.cli import campaign_options
    from gupshup_async.cli._campaign import open_client

    monkeypatch.setenv("GUPSHUP_APP_TOKEN", "sk_test_token")
    argv = ["campaign", str(numbers), "--text", "x", "--app-id", "app", "--base-url", INSECURE]
    options = campaign_options(build_parser().parse_args([*argv, "--allow-insecure-http"]))
    assert options.allow_insecure_http is True
    async with open_client(options):  # built, closed, never used
        pass
    refused = campaign_options(build_parser().parse_args(argv))
    with pytest.raises(ValueError, match="allow_insecure_http=True"):
        open_client(refused)


def test_the_flag_is_described_in_help() -> None:
    for command in ("campaign", "worker"):
        shown = " ".join(_cli(command, "--help").stdout.split())
        assert "--allow-insecure-http accept" in shown or "--allow-insecure-http run" in shown
        assert "unencrypted" in shown


# ---------------------------------------------------------------- --enqueue and the worker


def test_enqueue_refuses_plain_http_before_storing_and_takes_it_with_the_flag(
    numbers: Path, database_url: str
) -> None:
    base: list[str | Path] = ["campaign", numbers, "--text", "x", "--base-url", INSECURE, "--token-env", TOKEN_VAR,
            "--enqueue"]  # fmt: skip
    refused = _cli(*base, GUPSHUP_DATABASE_URL=database_url)
    assert refused.returncode == 2
    assert one_error_line(refused.stderr) == REFUSAL
    with psycopg.connect(database_url) as db:
        assert db.execute("SELECT to_regclass('gupshup_campaigns')").fetchone() == (None,)
    stored = _cli(*base, "--allow-insecure-http", GUPSHUP_DATABASE_URL=database_url)
    assert stored.returncode == 0, stored.stderr
    with psycopg.connect(database_url) as db:
        assert db.execute("SELECT base_url FROM gupshup_campaigns").fetchall() == [(INSECURE,)]


async def _enqueue_with_nothing_to_send(database_url: str) -> None:
    from gupshup_async.journal.postgres import CampaignSpec, PostgresStore

    async with await PostgresStore.connect(database_url) as store:
        await store.ensure_schema()
        spec = CampaignSpec(app_id="app-a", message={"type": "text", "text": {"body": "x"}},
                            token_env=TOKEN_VAR, base_url=INSECURE, rate=None, burst=None,
                            concurrency=1, timeout=1.0, max_retries=0, message_sha256="m",
                            recipients_sha256="r")  # fmt: skip
        await store.enqueue(spec, ["not a number"])  # invalid: nothing pending, nothing sent


def _campaign_row(database_url: str) -> tuple[str, str | None]:
    with psycopg.connect(database_url) as db:
        row = db.execute("SELECT status, stopped_by FROM gupshup_campaigns").fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.parametrize("allowed", [False, True])
async def test_the_worker_builds_the_client_with_the_flag_or_stops_the_campaign(
    database_url: str, allowed: bool
) -> None:
    from gupshup_async.cli._worker import worker_from_args

    await _enqueue_with_nothing_to_send(database_url)
    argv = ["worker", "--lease", "2", "--exit-when-idle"]
    args = build_parser().parse_args(argv + (["--allow-insecure-http"] if allowed else []))
    worker = worker_from_args(database_url, args)
    worker.environ = {TOKEN_VAR: "sk_test_token"}
    outcomes: list[object] = []
    worker.on_outcome = lambda app, outcome: outcomes.append(outcome)
    await asyncio.wait_for(worker.run(exit_when_idle=True), timeout=60)
    status, stopped_by = await asyncio.to_thread(_campaign_row, database_url)
    assert outcomes == []  # nothing was sent either way
    if allowed:
        assert (status, stopped_by) == ("done", None)
    else:
        assert status == "stopped"
        assert stopped_by is not None
        assert stopped_by.startswith(f"cannot run this campaign: base_url '{INSECURE}' would ")
