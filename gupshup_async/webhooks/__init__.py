"""Delivery webhooks: parse Gupshup v3 callbacks, receive them (ASGI), reconcile into a journal.

`parse_events` is pure; `WebhookReceiver` is an ASGI app that authenticates, bounds, stores
and acknowledges; `reconcile` moves each recipient's delivery status forward in the journal.
"""

from .events import (
    STATUSES,
    ButtonPayload,
    FlowResponse,
    InboundLocation,
    InboundMedia,
    InboundMessage,
    InboundReaction,
    InteractiveReply,
    StatusEvent,
    UnknownEvent,
    WebhookError,
    WebhookEvent,
    WebhookParseError,
    parse_events,
    parse_timestamp,
)
from .receiver import DEFAULT_MAX_BODY_BYTES, DEFAULT_SECRET_HEADER, WebhookReceiver
from .reconcile import RANKS, callback_key, reconcile

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_SECRET_HEADER",
    "RANKS",
    "STATUSES",
    "ButtonPayload",
    "FlowResponse",
    "InboundLocation",
    "InboundMedia",
    "InboundMessage",
    "InboundReaction",
    "InteractiveReply",
    "StatusEvent",
    "UnknownEvent",
    "WebhookError",
    "WebhookEvent",
    "WebhookParseError",
    "WebhookReceiver",
    "callback_key",
    "parse_events",
    "parse_timestamp",
    "reconcile",
]
