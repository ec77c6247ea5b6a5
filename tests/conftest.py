from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import respx

import gupshup_async as g
from gupshup_async.mock import MockGupshupServer

APP_ID = "app-123"
TOKEN = "sk_test_5ecret7oken"
BASE_URL = "https://partner.example"
SEND_URL = f"{BASE_URL}/partner/app/{APP_ID}/v3/message"

SUCCESS = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "919876543210", "wa_id": "919876543210"}],
    "messages": [{"id": "gs-1"}],
}


@pytest.fixture
def router() -> respx.Router:
    """A respx router for the wire; it is injected through httpx.MockTransport because
    respx's default mocker patches httpcore, which the aiohttp transport bypasses."""
    return respx.Router(assert_all_called=False, base_url=BASE_URL)


@pytest.fixture
async def client(router: respx.Router) -> AsyncIterator[g.AsyncGupshupClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    async with (
        http,
        g.AsyncGupshupClient(
            APP_ID,
            TOKEN,
            base_url=BASE_URL,
            http_client=http,
            retry_policy=g.RetryPolicy(sleep=_no_sleep, random=lambda: 1.0),
        ) as sdk,
    ):
        yield sdk


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def mock_server() -> AsyncIterator[MockGupshupServer]:
    async with MockGupshupServer() as server:
        yield server


@pytest.fixture
async def loopback_client(
    mock_server: MockGupshupServer,
) -> AsyncIterator[g.AsyncGupshupClient]:
    async with g.AsyncGupshupClient(
        mock_server.app_id, mock_server.token, base_url=mock_server.base_url
    ) as sdk:
        yield sdk


# ---------------------------------------------------------------- PostgreSQL (a real server)

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL_ENV = "GUPSHUP_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a real PostgreSQL server: $GUPSHUP_TEST_DATABASE_URL, or a throwaway cluster
    started by scripts/postgres for this session. Never skipped: no server fails the tests."""
    given = os.environ.get(DATABASE_URL_ENV)
    if given:
        yield given
        return
    # Not under pytest's tmp dir: that one is private to root, and the server runs as postgres.
    where = tempfile.mkdtemp(prefix="gupshup-pg-")
    script = str(ROOT / "scripts" / "postgres")
    try:
        started = subprocess.run(
            ["bash", script, "start", where], capture_output=True, text=True, timeout=300
        )
        if started.returncode != 0:
            pytest.fail(f"could not start PostgreSQL: {started.stderr[-2000:]}")
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", script, "stop", where], capture_output=True, timeout=60)
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def database_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(postgres_server, name)
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
