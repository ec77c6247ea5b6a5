"""The Postgres journal against a real server: the SQLite journal's behaviours, many campaigns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from gupshup_async import Outcome
from gupshup_async.journal.postgres import (
    CampaignSpec,
    LeaseLostError,
    PostgresJournal,
    PostgresStore,
)

from .pg_support import cut_connections


def _spec(app_id: str = "app-1", *, recipients_sha256: str = "r1") -> CampaignSpec:
    return CampaignSpec(
        app_id=app_id,
        message={"type": "text", "text": {"body": "hi"}},
        token_env="APP_ONE_TOKEN",
        base_url="http://127.0.0.1:9",
        rate=80.0,
        burst=None,
        concurrency=8,
        timeout=5.0,
        max_retries=2,
        message_sha256="m1",
        recipients_sha256=recipients_sha256,
    )


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[PostgresStore]:
    async with await PostgresStore.connect(database_url) as opened:
        await opened.ensure_schema()
        yield opened


async def _journal(
    store: PostgresStore, numbers: list[str], app_id: str = "app-1"
) -> PostgresJournal:
    campaign, _ = await store.enqueue(_spec(app_id, recipients_sha256=repr(numbers)), numbers)
    return store.journal(campaign, app_id)


def _sent(digits: str) -> Outcome:
    result = {"messages": [{"id": f"gs-{digits}"}]}
    return Outcome(
        0,
        digits,
        digits,
        "sent",
        {"recipient": digits, "success": True, "result": result},
        None,
        1,
        0.01,
    )


async def _pending(journal: PostgresJournal) -> list[str]:
    return [to async for to in journal.pending()]


async def test_enqueue_classifies_pending_invalid_and_duplicate(store: PostgresStore) -> None:
    journal = await _journal(store, ["+91 98765 43210", "12", "919876543210", "917000000000"])
    assert await journal.counts() == {"pending": 2, "invalid": 1, "duplicate": 1}
    assert await _pending(journal) == ["+91 98765 43210", "917000000000"]


async def test_the_same_number_in_two_campaigns_is_two_recipients(store: PostgresStore) -> None:
    first = await _journal(store, ["917000000001"], app_id="app-1")
    second = await _journal(store, ["917000000001"], app_id="app-2")
    await first.mark_sending("917000000001")
    assert await first.counts() == {"sending": 1}
    assert await second.counts() == {"pending": 1}
    await second.mark_sending("917000000001")
    assert await second.counts() == {"sending": 1}


async def test_enqueue_twice_stores_the_campaign_once(store: PostgresStore) -> None:
    assert await store.enqueue(_spec(), ["917000000001"]) == (1, True)
    assert await store.enqueue(_spec(), ["917000000001"]) == (1, False)
    assert await store.counts() == {1: {"pending": 1}}


async def test_the_campaign_row_holds_what_a_worker_needs_and_never_a_token(
    store: PostgresStore, database_url: str
) -> None:
    campaign, _ = await store.enqueue(_spec(), ["917000000001"])
    assert await store.campaign(campaign) == _spec().__class__(
        **{**_spec().__dict__, "id": campaign}
    )
    async with await psycopg.AsyncConnection.connect(database_url) as db:
        cursor = await db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'gupshup_campaigns'"
        )
        columns = {row[0] for row in await cursor.fetchall()}
    assert "token_env" in columns
    assert not {c for c in columns if "token" in c} - {"token_env"}


async def test_schema_creation_is_idempotent(store: PostgresStore) -> None:
    await store.enqueue(_spec(), ["917000000001"])
    await store.ensure_schema()
    assert await store.counts() == {1: {"pending": 1}}


async def test_marks_of_one_loop_turn_commit_in_one_transaction(store: PostgresStore) -> None:
    numbers = [f"9170000000{i:02d}" for i in range(50)]
    journal = await _journal(store, numbers)
    other = await _journal(store, numbers[:10], app_id="app-2")
    before = store.commits
    await asyncio.gather(
        *(journal.mark_sending(n) for n in numbers), *(other.mark_sending(n) for n in numbers[:10])
    )
    assert store.commits - before == 1
    assert await journal.counts() == {"sending": 50}
    assert await other.counts() == {"sending": 10}


async def test_a_mark_is_committed_before_mark_sending_returns(
    store: PostgresStore, database_url: str
) -> None:
    journal = await _journal(store, ["917000000001"])
    await journal.mark_sending("917000000001")
    async with await psycopg.AsyncConnection.connect(database_url) as elsewhere:
        cursor = await elsewhere.execute("SELECT state FROM gupshup_recipients")
        assert await cursor.fetchall() == [("sending",)]


async def test_final_states_and_results_in_file_order(store: PostgresStore) -> None:
    journal = await _journal(store, ["917000000002", "bad", "917000000001"])
    await journal.mark_sending("917000000001")
    await journal.mark_sending("917000000002")
    journal.record(_sent("917000000001"))
    failure = Outcome(0, "917000000002", "917000000002", "failed",
                      {"recipient": "917000000002", "success": False, "error": "HTTP 400: nope"})  # fmt: skip
    journal.record(failure)
    await journal.flush()
    assert await journal.counts() == {"sent": 1, "failed": 1, "invalid": 1}
    results = [r async for r in journal.results()]
    assert [r["recipient"] for r in results] == ["917000000002", "bad", "917000000001"]
    assert results[0] == {"recipient": "917000000002", "success": False, "error": "HTTP 400: nope"}
    assert results[2] == {
        "recipient": "917000000001",
        "success": True,
        "result": {"messages": [{"id": "gs-917000000001"}]},
    }
    assert await journal.failures() == [
        ("failed", None, "HTTP 400: nope", 1),
        ("invalid", None, "only digits, '+', spaces, '-' and '()' are allowed", 1),
    ]


async def test_interrupted_sends_become_ambiguous_unless_resent(store: PostgresStore) -> None:
    journal = await _journal(store, ["917000000001", "917000000002"])
    await journal.mark_sending("917000000001")
    assert await journal.settle_interrupted(resend_ambiguous=False) == 1
    assert await journal.counts() == {"ambiguous": 1, "pending": 1}
    assert await _pending(journal) == ["917000000002"]
    assert await journal.settle_interrupted(resend_ambiguous=True) == 1
    assert await journal.counts() == {"pending": 2}


async def test_not_sent_goes_back_to_pending(store: PostgresStore) -> None:
    journal = await _journal(store, ["917000000001"])
    await journal.mark_sending("917000000001")
    journal.record(Outcome(0, "917000000001", "917000000001", "not_sent",
                           {"recipient": "917000000001", "success": False, "error": "cancelled"}))  # fmt: skip
    await journal.flush()
    assert await journal.counts() == {"pending": 1}


async def test_a_recipient_that_is_not_pending_is_never_marked(store: PostgresStore) -> None:
    journal = await _journal(store, ["917000000001"])
    with pytest.raises(LookupError, match="not pending"):
        await journal.mark_sending("917000000009")
    await journal.mark_sending("917000000001")
    with pytest.raises(LookupError, match="not pending"):
        await journal.mark_sending("917000000001")  # already sending: a second send is refused


async def test_a_failed_commit_stops_further_sends(store: PostgresStore, database_url: str) -> None:
    journal = await _journal(store, ["917000000001", "917000000002"])
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        await admin.execute(
            "ALTER TABLE gupshup_recipients ADD CONSTRAINT never CHECK (state <> 'sending') NOT VALID"
        )
    with pytest.raises(psycopg.errors.CheckViolation):
        await journal.mark_sending("917000000001")
    with pytest.raises(psycopg.errors.CheckViolation):
        await journal.mark_sending("917000000002")  # no further mark, hence no further send
    assert await journal.counts() == {"pending": 2}


async def test_a_cut_connection_fails_the_mark(store: PostgresStore, database_url: str) -> None:
    journal = await _journal(store, ["917000000001"])
    assert await cut_connections(database_url) >= 1
    with pytest.raises(psycopg.OperationalError):
        await journal.mark_sending("917000000001")


async def test_a_mark_under_a_lease_commits_only_while_the_lease_is_held(
    store: PostgresStore,
) -> None:
    campaign, _ = await store.enqueue(_spec(), ["917000000001", "917000000002"])
    journal = store.journal(campaign, "app-1", worker="w1")
    await store.reader.execute(
        "INSERT INTO gupshup_app_leases (app_id, worker, expires) "
        "VALUES ('app-1', 'w1', clock_timestamp() + interval '30 seconds')"
    )
    await journal.mark_sending("917000000001")
    await store.reader.execute("UPDATE gupshup_app_leases SET expires = clock_timestamp()")
    with pytest.raises(LeaseLostError, match="app-1"):
        await journal.mark_sending("917000000002")
    assert await journal.counts() == {"sending": 1, "pending": 1}


async def test_settling_interrupted_sends_needs_the_lease_too(store: PostgresStore) -> None:
    """A worker that lost the app (and does not know yet) must not turn its new owner's
    `sending` rows into `ambiguous` when it moves on to the app's next campaign."""
    campaign, _ = await store.enqueue(_spec(), ["917000000001", "917000000002"])
    await store.reader.execute(
        "INSERT INTO gupshup_app_leases (app_id, worker, expires) "
        "VALUES ('app-1', 'new-owner', clock_timestamp() + interval '30 seconds')"
    )
    owner = store.journal(campaign, "app-1", worker="new-owner")
    await owner.mark_sending("917000000001")
    displaced = store.journal(campaign, "app-1", worker="old-owner")
    with pytest.raises(LeaseLostError, match="app-1"):
        await displaced.settle_interrupted(resend_ambiguous=False)
    assert await owner.counts() == {"sending": 1, "pending": 1}
    assert await owner.settle_interrupted(resend_ambiguous=False) == 1  # the holder may
    assert await owner.counts() == {"ambiguous": 1, "pending": 1}
