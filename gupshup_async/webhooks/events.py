"""Gupshup v3 webhook bodies read into typed events: pure, no I/O.

A v3 callback is Meta's envelope plus Gupshup's fields::

    {"gs_app_id": "...", "object": "whatsapp_business_account",
     "entry": [{"id": "...", "changes": [{"field": "messages", "value": {
         "statuses": [...], "messages": [...], "contacts": [...]}}]}]}

Each item of `statuses[]` becomes a `StatusEvent`, each of `messages[]` an `InboundMessage`;
anything else in a well-formed envelope is an `UnknownEvent` (kept, never an exception), so a
new kind of callback is stored rather than refused. Only a body that is not a v3 callback at
all raises `WebhookParseError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, TypeAlias

#: Every delivery status Meta reports for a sent message.
STATUSES = ("enqueued", "sent", "delivered", "read", "failed", "deleted")
DeliveryStatus: TypeAlias = Literal["enqueued", "sent", "delivered", "read", "failed", "deleted"]

#: Above this a timestamp is in milliseconds (1e11 seconds is the year 5138).
_MILLISECONDS_FROM = 100_000_000_000


class WebhookParseError(ValueError):
    """The body is not a Gupshup v3 callback (not JSON, not an object, no `entry` list)."""


@dataclass(frozen=True, slots=True)
class WebhookError:
    """One entry of a failed status's `errors[]`: Meta's code, title, message and details."""

    code: int | None
    title: str | None
    message: str | None = None
    details: str | None = None


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A delivery status for a message the app sent.

    `gs_id` is the id the send answered with (`SendResult.message_id`); `wamid` is Meta's id.
    `recipient` is as given: Gupshup masks it (`9191****873`), so never match on it.
    `timestamp` is an aware UTC datetime (None when absent or unreadable).
    """

    app_id: str | None
    gs_id: str | None
    wamid: str | None
    recipient: str | None
    status: DeliveryStatus
    timestamp: datetime | None
    errors: tuple[WebhookError, ...] = ()
    biz_opaque_callback_data: str | None = None
    conversation: Mapping[str, Any] | None = None
    pricing: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def message_id(self) -> str | None:
        """The id to match a send by: Gupshup's `gs_id`, else Meta's `wamid`."""
        return self.gs_id or self.wamid


@dataclass(frozen=True, slots=True)
class InteractiveReply:
    """A tapped reply button (`button_reply`) or list row (`list_reply`)."""

    kind: Literal["button_reply", "list_reply"]
    id: str | None
    title: str | None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ButtonPayload:
    """A tapped quick-reply button of a template (`type: button`)."""

    payload: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class InboundMedia:
    """An image, video, audio, document or sticker the user sent (download it by `id`)."""

    id: str | None
    mime_type: str | None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool | None = None
    animated: bool | None = None


@dataclass(frozen=True, slots=True)
class InboundLocation:
    """A location the user shared."""

    latitude: float | None
    longitude: float | None
    name: str | None = None
    address: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class InboundReaction:
    """A reaction to one of the app's messages; an empty `emoji` removes it."""

    message_id: str | None
    emoji: str | None


@dataclass(frozen=True, slots=True)
class FlowResponse:
    """A completed flow (`nfm_reply`): `data` is `response_json` decoded (None if not JSON)."""

    name: str | None
    body: str | None
    response_json: str | None
    data: Mapping[str, Any] | None


_MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a user sent to the app. Only the field of its `type` is set; `raw` has all.

    `context` is the id of the message it replies to (or the one a button belonged to).
    """

    app_id: str | None
    wamid: str | None
    sender: str | None
    profile_name: str | None
    timestamp: datetime | None
    type: str
    context: str | None = None
    text: str | None = None
    reply: InteractiveReply | None = None
    button: ButtonPayload | None = None
    media: InboundMedia | None = None
    location: InboundLocation | None = None
    contacts: tuple[Mapping[str, Any], ...] = ()
    reaction: InboundReaction | None = None
    order: Mapping[str, Any] | None = None
    flow_response: FlowResponse | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """Anything in a v3 envelope that is not a status or a message (kept as it came)."""

    raw: Any = field(repr=False)
    app_id: str | None = None


WebhookEvent: TypeAlias = StatusEvent | InboundMessage | UnknownEvent


def parse_events(body: bytes | str | Mapping[str, Any]) -> list[WebhookEvent]:
    """Read one v3 callback body into its events, in the order they appear.

    Raises `WebhookParseError` (a `ValueError`) when the body is not a v3 callback.
    """
    data = _load(body)
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise WebhookParseError("not a Gupshup v3 callback: no 'entry' list")
    app_id = _str(data.get("gs_app_id"))
    events: list[WebhookEvent] = []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            events.append(UnknownEvent(entry, app_id))
            continue
        for change in changes:
            events.extend(_change(change, app_id))
    return events


def _load(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as bad:  # RecursionError: absurdly deep JSON
        raise WebhookParseError(f"not a Gupshup v3 callback: body is not JSON ({bad})") from None
    if not isinstance(data, dict):
        raise WebhookParseError("not a Gupshup v3 callback: body is not a JSON object")
    return data


def _change(change: Any, app_id: str | None) -> list[WebhookEvent]:
    value = change.get("value") if isinstance(change, dict) else None
    if not isinstance(value, dict):
        return [UnknownEvent(change, app_id)]
    statuses, messages = value.get("statuses"), value.get("messages")
    if not isinstance(statuses, list) and not isinstance(messages, list):
        return [UnknownEvent(change, app_id)]
    events: list[WebhookEvent] = []
    for item in statuses if isinstance(statuses, list) else ():
        events.append(_status(item, app_id))
    names = _profile_names(value.get("contacts"))
    for item in messages if isinstance(messages, list) else ():
        events.append(_message(item, app_id, names))
    return events


def _status(item: Any, app_id: str | None) -> WebhookEvent:
    if not isinstance(item, dict) or item.get("status") not in STATUSES:
        return UnknownEvent(item, app_id)
    conversation, pricing = item.get("conversation"), item.get("pricing")
    return StatusEvent(
        app_id=app_id,
        gs_id=_str(item.get("gs_id")),
        wamid=_str(item.get("id")),
        recipient=_str(item.get("recipient_id")),
        status=item["status"],
        timestamp=parse_timestamp(item.get("timestamp")),
        errors=_errors(item),
        biz_opaque_callback_data=_str(item.get("biz_opaque_callback_data")),
        conversation=conversation if isinstance(conversation, dict) else None,
        pricing=pricing if isinstance(pricing, dict) else None,
        raw=item,
    )


def _errors(item: dict[str, Any]) -> tuple[WebhookError, ...]:
    errors = item.get("errors")
    if isinstance(errors, list) and errors:
        return tuple(_error(e) for e in errors if isinstance(e, dict))
    if "code" in item or "reason" in item:  # the older flat form: code + reason
        return (WebhookError(code=_int(item.get("code")), title=_str(item.get("reason"))),)
    return ()


def _error(error: dict[str, Any]) -> WebhookError:
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    return WebhookError(
        code=_int(error.get("code")),
        title=_str(error.get("title")),
        message=_str(error.get("message")),
        details=_str(details),
    )


def _profile_names(contacts: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in contacts if isinstance(contacts, list) else ():
        if not isinstance(contact, dict):
            continue
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        wa_id = _str(contact.get("wa_id"))
        if wa_id is not None and isinstance(name, str):
            names[wa_id] = name
    return names


def _message(item: Any, app_id: str | None, names: dict[str, str]) -> WebhookEvent:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        return UnknownEvent(item, app_id)
    kind: str = item["type"]
    sender = _str(item.get("from"))
    context = item.get("context")
    content = item.get(kind)
    body = content if isinstance(content, dict) else {}
    fields: dict[str, Any] = {}
    if kind == "text":
        fields["text"] = _str(body.get("body"))
    elif kind == "interactive":
        fields.update(_interactive(body))
    elif kind == "button":
        fields["button"] = ButtonPayload(_str(body.get("payload")), _str(body.get("text")))
    elif kind in _MEDIA_TYPES:
        fields["media"] = InboundMedia(
            id=_str(body.get("id")),
            mime_type=_str(body.get("mime_type")),
            sha256=_str(body.get("sha256")),
            caption=_str(body.get("caption")),
            filename=_str(body.get("filename")),
            voice=_bool(body.get("voice")),
            animated=_bool(body.get("animated")),
        )
    elif kind == "location":
        fields["location"] = InboundLocation(
            latitude=_float(body.get("latitude")),
            longitude=_float(body.get("longitude")),
            name=_str(body.get("name")),
            address=_str(body.get("address")),
            url=_str(body.get("url")),
        )
    elif kind == "contacts":
        cards = content if isinstance(content, list) else []
        fields["contacts"] = tuple(card for card in cards if isinstance(card, dict))
    elif kind == "reaction":
        fields["reaction"] = InboundReaction(_str(body.get("message_id")), _str(body.get("emoji")))
    elif kind == "order":
        fields["order"] = body
    return InboundMessage(
        app_id=app_id,
        wamid=_str(item.get("id")),
        sender=sender,
        profile_name=names.get(sender) if sender is not None else None,
        timestamp=parse_timestamp(item.get("timestamp")),
        type=kind,
        context=_str(context.get("id")) if isinstance(context, dict) else None,
        raw=item,
        **fields,
    )


def _interactive(body: dict[str, Any]) -> dict[str, Any]:
    kind = body.get("type")
    if kind in ("button_reply", "list_reply"):
        reply = body.get(kind)
        reply = reply if isinstance(reply, dict) else {}
        return {
            "reply": InteractiveReply(
                kind=kind,
                id=_str(reply.get("id")),
                title=_str(reply.get("title")),
                description=_str(reply.get("description")),
            )
        }
    if kind == "nfm_reply":
        reply = body.get("nfm_reply")
        reply = reply if isinstance(reply, dict) else {}
        given = reply.get("response_json")
        if isinstance(given, dict):  # some relays hand it over decoded already
            given = json.dumps(given, ensure_ascii=False)
        response_json = _str(given)
        data: Any = None
        if response_json is not None:
            try:
                data = json.loads(response_json)
            except (ValueError, RecursionError):
                data = None
        return {
            "flow_response": FlowResponse(
                name=_str(reply.get("name")),
                body=_str(reply.get("body")),
                response_json=response_json,
                data=data if isinstance(data, dict) else None,
            )
        }
    return {}


def parse_timestamp(value: Any) -> datetime | None:
    """Seconds or milliseconds since the epoch, as a number or a string, to aware UTC."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not number >= 0 or number > 1e15:  # NaN, negative, or past any plausible millisecond
        return None
    if number >= _MILLISECONDS_FROM:
        number /= 1000.0
    return datetime.fromtimestamp(number, tz=timezone.utc)


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
