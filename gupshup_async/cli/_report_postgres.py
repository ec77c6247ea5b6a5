"""`gupshup-async report postgresql://...`: the campaigns the workers run, with their funnels.

Per campaign: its state counts (as before) and, under `delivery`, the funnel of `report J`
for a SQLite journal; at the top, the totals and the funnel of every campaign shown, with the
status events that match no recipient of the database (yet). Statuses that arrived before
their send's answer was stored are applied first (skipped on a read-only standby).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from ._inputs import InputError
from ._report import funnel_of, render, write_failure_rows
from ._worker import _say, _unusable_url, redacted

_TOTALS = ("recipients", "sent", "failed", "ambiguous", "pending", "sending")


def report_postgres(
    url: str, campaign: int | None, as_json: bool, failures: Path | None, *, source: str
) -> int:
    """Print every campaign's (or one's) counts and funnel; `--json`: one object. Exit 2 on
    bad usage (`source` names where the URL came from), 4 when the database cannot be read."""
    if (status := _unusable_url(url, source)) is not None:
        return status
    import psycopg

    try:
        data, written = asyncio.run(_report(url, campaign, failures))
    except (InputError, LookupError) as problem:
        return _say(problem)
    except psycopg.Error as problem:  # unreachable, missing, refused: as --enqueue says it
        from . import EXIT_STORAGE

        # libpq's message can span lines: one line here.
        reason = " ".join(redacted(str(problem), url).split()) or type(problem).__name__
        _say(f"the Postgres journal could not be read ({reason})")
        return EXIT_STORAGE
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    for item in data["campaigns"]:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(item["counts"].items()))
        stopped = f" (stopped: {item['stopped_by']})" if item["stopped_by"] else ""
        print(f"campaign {item['id']} app {item['app_id']} {item['status']}{stopped}: {counts}")
        print("  " + render(item["delivery"]).replace("\n", "\n  "))
    if data["delivery"]["unmatched_events"]:
        print(f"Status events matching no recipient (yet): {data['delivery']['unmatched_events']}")
    if failures is not None:
        print(f"{written} failure rows written to {failures}")
    return 0


async def _report(
    url: str, campaign: int | None, failures: Path | None
) -> tuple[dict[str, Any], int]:
    import psycopg

    from ..journal._pg_delivery import PostgresDelivery
    from ..journal.postgres import PostgresStore

    async with await PostgresStore.connect(url) as store:
        # A report only reads (a standby, a mistyped database): no tables, no campaigns.
        cursor = await store.reader.execute("SELECT to_regclass('gupshup_campaigns')")
        if (await cursor.fetchone()) == (None,):
            if campaign is not None:
                raise LookupError(f"no campaign {campaign} in this database")
            empty = {"campaigns": [], **dict.fromkeys(_TOTALS, 0)}
            empty["delivery"] = {**funnel_of([]), "unmatched_events": 0}
            if failures is not None:
                write_failure_rows(failures, [], first=("campaign",))
            return empty, 0
        specs = await store.campaigns(ids=[campaign] if campaign is not None else None)
        if campaign is not None and not specs:
            raise LookupError(f"no campaign {campaign} in this database")
        counts = await store.counts(campaign)
        cursor = await store.reader.execute(
            "SELECT id, stopped_by FROM gupshup_campaigns "
            "WHERE %(c)s::bigint IS NULL OR id = %(c)s::bigint",
            {"c": campaign},
        )
        stopped = dict(await cursor.fetchall())
        delivery = PostgresDelivery(store.reader)
        unmatched, written = 0, 0
        if await delivery.has_delivery_tables():  # (a database no v2 worker or receiver saw)
            with contextlib.suppress(psycopg.errors.ReadOnlySqlTransaction):
                await delivery.apply_unmatched()
            groups = await delivery.delivery_counts(campaign)
            unmatched = await delivery.unapplied_events()
            if failures is not None:
                rows = await delivery.delivery_failures(campaign)
                written = write_failure_rows(failures, rows, first=("campaign",))
        else:
            groups = {
                owner: [(state, None, None, n) for state, n in by_state.items()]
                for owner, by_state in counts.items()
            }
            if failures is not None:
                raise InputError("--failures: this database has no delivery statuses yet")
    campaigns: list[dict[str, Any]] = []
    for spec in specs:
        assert spec.id is not None
        by_state = counts.get(spec.id, {})
        campaigns.append(
            {
                "id": spec.id,
                "app_id": spec.app_id,
                "status": spec.status,
                "stopped_by": stopped.get(spec.id),
                "recipients": sum(by_state.values()),
                "counts": by_state,
                "sent": by_state.get("sent", 0),
                "failed": by_state.get("failed", 0),
                "ambiguous": by_state.get("ambiguous", 0),
                "pending": by_state.get("pending", 0),
                "sending": by_state.get("sending", 0),
                "delivery": funnel_of(groups.get(spec.id, [])),
            }
        )
    totals: dict[str, Any] = {key: sum(int(item[key]) for item in campaigns) for key in _TOTALS}
    shown = [group for spec in specs for group in groups.get(spec.id or 0, [])]
    totals["delivery"] = {**funnel_of(shown), "unmatched_events": unmatched}
    return {"campaigns": campaigns, **totals}, written
