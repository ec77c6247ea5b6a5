"""gupshup-async: an asyncio-native client for the Gupshup Partner API v3 (WhatsApp).

`AsyncGupshupClient` sends validated, typed messages over one pooled connection;
`BulkSender` fans a message out to many recipients at the account's rate.
"""

from ._bulk import BulkFailure, BulkResult, BulkSender, BulkSuccess, Outcome, Status
from ._client import AsyncGupshupClient, AttemptEvent, SendResult
from ._contacts import (
    Contact,
    ContactAddress,
    ContactEmail,
    ContactName,
    ContactOrg,
    ContactPhone,
    Contacts,
    ContactUrl,
)
from ._errors import (
    THROTTLING_CODES,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    GupshupError,
    InvalidCredentialsError,
    InvalidRecipientError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from ._interactive import (
    AddressRequest,
    FlowMessage,
    ListMessage,
    ListRow,
    ListSection,
    ReplyButton,
    ReplyButtons,
)
from ._media import Audio, Document, Image, Sticker, Video
from ._messages import Location, Message, Reaction, Template, Text, message_from_wire
from ._recipients import normalize_recipient
from ._retry import RetryDecision, RetryPolicy
from ._version import __version__
from .webhooks import WebhookReceiver, parse_events

__all__ = [
    "THROTTLING_CODES",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AddressRequest",
    "AsyncGupshupClient",
    "AttemptEvent",
    "Audio",
    "AuthenticationError",
    "BadRequestError",
    "BulkFailure",
    "BulkResult",
    "BulkSender",
    "BulkSuccess",
    "Contact",
    "ContactAddress",
    "ContactEmail",
    "ContactName",
    "ContactOrg",
    "ContactPhone",
    "ContactUrl",
    "Contacts",
    "Document",
    "FlowMessage",
    "GupshupError",
    "Image",
    "InvalidCredentialsError",
    "InvalidRecipientError",
    "ListMessage",
    "ListRow",
    "ListSection",
    "Location",
    "Message",
    "Outcome",
    "PermissionDeniedError",
    "RateLimitError",
    "Reaction",
    "ReplyButton",
    "ReplyButtons",
    "RetryDecision",
    "RetryPolicy",
    "SendResult",
    "ServerError",
    "Status",
    "Sticker",
    "Template",
    "Text",
    "UnexpectedResponseError",
    "Video",
    "WebhookReceiver",
    "__version__",
    "message_from_wire",
    "normalize_recipient",
    "parse_events",
]
