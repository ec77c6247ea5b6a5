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

__all__ = [
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
    "parse_events",
    "parse_timestamp",
]
