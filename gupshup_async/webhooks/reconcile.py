"""Delivery statuses into the campaign journal: forward only, each event once.

Ranks, lowest first::

    enqueued 1 < sent 2 < failed 3 < delivered 4 < read 5      (deleted: stored, not ranked)

A recipient's status only moves to a higher rank, so repeated and out-of-order events are
harmless. `failed` outranks `sent` (WhatsApp gave up after sending) but not `delivered`: once
the phone confirmed receipt, a later `failed` cannot undo it, so it is stored with the other
events and the recipient stays delivered (and a `delivered` arriving after a `failed` wins).

A status finds its recipient by the send's message id (`gs_id`, from the POST answer), or by
its `biz_opaque_callback_data` when it carries this campaign's key (`ga:<tag>:<row>` from a
SQLite campaign; `gp:<campaign>:<tag>:<row>` from a Postgres worker, the tag being that
campaign's): that is how a send whose POST answer was lost (an ambiguous recipient) is
settled. Phone numbers are never matched (Gupshup masks them). The rules both journals apply
are in `journal._delivery_rules`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from ..journal._delivery_rules import EventRow
from ..journal._sqlite_delivery import DeliveryRecords
from .events import InboundMessage, StatusEvent, WebhookEvent

#: A status's place in the funnel; a recipient's status only moves to a higher rank.
RANKS = {"enqueued": 1, "sent": 2, "failed": 3, "delivered": 4, "read": 5}
_CALLBACK_PREFIX = "ga:"
_POSTGRES_CALLBACK_PREFIX = "gp:"


def callback_key(tag: str, row: int) -> str:
    """The `biz_opaque_callback_data` a campaign puts on the send of journal row `row`."""
    return f"{_CALLBACK_PREFIX}{tag}:{row}"


def row_from_callback(value: str | None, tag: str | None) -> int | None:
    """The journal row a callback key names, when it is this campaign's (`tag`)."""
    if not value or not tag or not value.startswith(_CALLBACK_PREFIX):
        return None
    their_tag, _, row = value[len(_CALLBACK_PREFIX) :].rpartition(":")
    if their_tag != tag or not row.isdigit():
        return None
    return int(row)


def postgres_callback_key(campaign: int, tag: str, row: int) -> str:
    """The `biz_opaque_callback_data` a worker puts on the send of `campaign`'s row `row`
    (`tag` is the campaign's random callback tag: a key from another database never matches)."""
    return f"{_POSTGRES_CALLBACK_PREFIX}{campaign}:{tag}:{row}"


def postgres_hint(value: str | None) -> tuple[int, str, int] | None:
    """(campaign, tag, row) of a Postgres callback key, or None when `value` is not one."""
    if not value or not value.startswith(_POSTGRES_CALLBACK_PREFIX):
        return None
    parts = value[len(_POSTGRES_CALLBACK_PREFIX) :].split(":")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit() or not parts[1]:
        return None
    campaign, row = int(parts[0]), int(parts[2])
    if campaign >= 2**63 or row >= 2**31:  # beyond the columns: names no row
        return None
    return campaign, parts[1], row


def event_key(event: WebhookEvent) -> str:
    """What makes two deliveries the same event: message id and status, or the inbound id."""
    if isinstance(event, StatusEvent) and event.message_id:
        return f"s:{event.message_id}:{event.status}"
    if isinstance(event, InboundMessage) and event.wamid:
        return f"m:{event.wamid}"
    canonical = json.dumps(event.raw, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return "u:" + hashlib.sha256(canonical.encode()).hexdigest()


def event_row(event: WebhookEvent, tag: str | None) -> EventRow:
    """How `event` is stored in the journal's events table."""
    raw = _encode(event.raw)
    if isinstance(event, StatusEvent):
        error = event.errors[0] if event.errors else None
        postgres = postgres_hint(event.biz_opaque_callback_data)
        campaign, their_tag, hint = postgres or (None, None, None)
        return EventRow(
            key=event_key(event),
            kind="status",
            raw=raw,
            message_id=event.message_id,
            status=event.status,
            rank=RANKS.get(event.status),
            at=event.timestamp.timestamp() if event.timestamp else None,
            row_hint=hint if postgres else row_from_callback(event.biz_opaque_callback_data, tag),
            code=error.code if error and event.status == "failed" else None,
            title=error.title if error and event.status == "failed" else None,
            campaign=campaign,
            tag=their_tag,
        )
    kind = "message" if isinstance(event, InboundMessage) else "unknown"
    message_id = event.wamid if isinstance(event, InboundMessage) else None
    return EventRow(key=event_key(event), kind=kind, raw=raw, message_id=message_id)


def event_rows(events: Sequence[WebhookEvent], tag: str | None = None) -> list[EventRow]:
    """How `events` are stored; `tag` is a SQLite campaign's (Postgres keys carry their own)."""
    return [event_row(event, tag) for event in events]


def reconcile(journal: DeliveryRecords, events: Sequence[WebhookEvent]) -> list[bool]:
    """Store `events` in `journal` and move its recipients' statuses forward, in one commit.

    Returns, per event, whether it was new (False: delivered before, not applied again).
    """
    return journal.store_events(event_rows(events, journal.stored_callback_tag))


_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))


def _encode(raw: Any) -> str:
    return _ENCODER.encode(raw)
