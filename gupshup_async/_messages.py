"""The message models and the `Message` union; `message_from_wire` reads the API's JSON shape.

Each type is a frozen pydantic model (`extra="forbid"`) whose fields are the wire names and
whose `to_wire()` is its `{"type": T, T: {...}}` part of the body. They know nothing of HTTP,
recipients or tokens. Bad input raises pydantic's `ValidationError` (a `ValueError`) naming the
field and the limit, in the caller's code, before any request. Text, location and reaction
live here; media, contacts, interactive, commerce and template types in their own modules.

Reading from the wire keeps every field it reads or refuses it with a `ValueError`: nothing
is dropped or rewritten, so `to_wire()` gives back what was read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeAlias, cast

from pydantic import Field, field_validator, model_validator

from ._commerce import CatalogMessage, ProductListMessage, ProductMessage
from ._contacts import Contacts
from ._interactive import (
    AddressRequest,
    FlowMessage,
    ListMessage,
    LocationRequest,
    ReplyButtons,
    UrlButton,
    _Interactive,
    interactive_from_wire,
)
from ._media import Audio, Document, Image, Sticker, Video
from ._message_base import (
    Emoji,
    MessageModel,
    NonEmpty,
    TextBody,
    refuse_sdk_switches,
    strict_keys,
)
from ._recipients import normalize_recipient
from ._template import Template


class Text(MessageModel):
    """A text message: 1-4096 characters, no NUL; `preview_url` renders the first link."""

    wire_type: ClassVar[str] = "text"
    body: TextBody
    preview_url: Annotated[bool, Field(strict=True)] | None = None

    @field_validator("body")
    @classmethod
    def _no_nul(cls, body: str) -> str:
        if "\x00" in body:
            raise ValueError("body must not contain NUL characters (\\x00)")
        return body


class Location(MessageModel):
    """A map pin: latitude -90..90 and longitude -180..180 degrees, optional name and address."""

    wire_type: ClassVar[str] = "location"
    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, strict=True)]
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, strict=True)]
    name: NonEmpty | None = None
    address: NonEmpty | None = None


class Reaction(MessageModel):
    """An emoji reaction to a received message; an empty `emoji` removes the reaction.

    Text and mojibake (UTF-8 read as Latin-1) are refused unless `allow_text_emoji=True`
    (a choice of ours; it is not sent).
    """

    wire_type: ClassVar[str] = "reaction"
    message_id: NonEmpty
    emoji: Emoji
    allow_text_emoji: Annotated[bool, Field(exclude=True, strict=True)] = False

    @model_validator(mode="after")
    def _real_emoji(self) -> Reaction:
        if self.emoji and not self.allow_text_emoji and _is_plain_text(self.emoji):
            raise ValueError(
                "emoji must be the emoji character itself (e.g. '\\N{THUMBS UP SIGN}'), "
                "not text or UTF-8 bytes decoded as Latin-1 (allow_text_emoji=True sends it)"
            )
        return self


_TEXT_LIKE_EMOJI = frozenset({"\N{COPYRIGHT SIGN}", "\N{REGISTERED SIGN}"})


def _is_plain_text(emoji: str) -> bool:
    """True for text that no emoji is made of: ASCII, or UTF-8 read as Latin-1/cp1252.

    Every emoji but (c) and (R) lies outside cp1252, while mojibake such as the reference's
    thumbs up (three cp1252 characters) lies inside it.
    """
    if emoji.rstrip("\N{VARIATION SELECTOR-16}") in _TEXT_LIKE_EMOJI:
        return False
    try:
        emoji.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


Message: TypeAlias = (
    Text
    | Image
    | Video
    | Audio
    | Document
    | Sticker
    | Location
    | Contacts
    | Reaction
    | ReplyButtons
    | ListMessage
    | UrlButton
    | LocationRequest
    | AddressRequest
    | FlowMessage
    | ProductMessage
    | ProductListMessage
    | CatalogMessage
    | Template
)

MESSAGE_TYPES: tuple[type[MessageModel], ...] = (
    Text,
    Image,
    Video,
    Audio,
    Document,
    Sticker,
    Location,
    Contacts,
    Reaction,
    ReplyButtons,
    ListMessage,
    UrlButton,
    LocationRequest,
    AddressRequest,
    FlowMessage,
    ProductMessage,
    ProductListMessage,
    CatalogMessage,
    Template,
)

_INTERACTIVE: dict[str, type[_Interactive]] = {
    m.interactive_type: m for m in MESSAGE_TYPES if issubclass(m, _Interactive)
}
_SIMPLE: dict[str, type[MessageModel]] = {
    m.wire_type: m
    for m in MESSAGE_TYPES
    if m.wire_type not in ("interactive", "template", "contacts")
}
_ENVELOPE = {"messaging_product", "recipient_type", "to"}
#: Fields of a request body that `request_from_wire` reads beside the message.
_REQUEST_FIELDS = {
    "context": "a reply's context",
    "biz_opaque_callback_data": "the send's callback data",
}


def message_from_wire(data: Mapping[str, Any]) -> Message:
    """Build the model from the API's JSON shape, e.g. `{"type": "image", "image": {...}}`.

    The inverse of `to_wire()`, for messages kept in files (the campaign's `--message-file`).
    `to`, `messaging_product` ("whatsapp") and `recipient_type` ("individual") may stand
    beside it and are checked; a reply's `context` and `biz_opaque_callback_data` belong to
    `request_from_wire`. Raises `ValueError` for an unknown type, a field the models would
    not send back, or a payload the models refuse.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"a message must be a JSON object, got {type(data).__name__}")
    for name, what in _REQUEST_FIELDS.items():
        if name in data:
            raise ValueError(
                f"{name}: {what} is not part of a message; "
                "read whole request bodies with request_from_wire()"
            )
    _check_envelope(data)
    kind = data.get("type")
    if kind is None:
        raise ValueError('missing \'type\' (e.g. "type": "text")')
    if not isinstance(kind, str):
        raise ValueError(f'type must be a string such as "text", got {type(kind).__name__}')
    extra = set(data) - {"type", str(kind)} - _ENVELOPE
    if extra:
        raise ValueError(f"unexpected top-level field(s): {', '.join(sorted(map(str, extra)))}")
    if kind not in _SIMPLE and kind not in ("contacts", "template", "interactive"):
        raise ValueError(f"type: unknown message type {kind!r}")
    if kind not in data:
        raise ValueError(f"{kind}: missing the {kind!r} object that type {kind!r} names")
    part = data[kind]
    if kind == "contacts":
        return Contacts.model_validate({"contacts": part})
    if kind in _SIMPLE:
        model = _SIMPLE[kind]
        return cast(Message, model.model_validate(refuse_sdk_switches(model, part, kind)))
    if kind == "template":
        return _template_from_wire(part)
    if kind == "interactive":
        if not isinstance(part, Mapping):
            raise ValueError("interactive must be a JSON object")
        return cast(Message, interactive_from_wire(part, _INTERACTIVE))
    raise AssertionError(kind)  # every known type returned above


def _check_envelope(data: Mapping[str, Any]) -> None:
    product = data.get("messaging_product", "whatsapp")
    if product != "whatsapp":
        raise ValueError(f"messaging_product must be 'whatsapp', got {product!r}")
    recipient_type = data.get("recipient_type", "individual")
    if recipient_type != "individual":
        raise ValueError(
            f"recipient_type {recipient_type!r} is not supported: this SDK sends to "
            "individuals ('individual') only"
        )
    if "to" in data:
        to = data["to"]
        if not isinstance(to, str):
            raise ValueError(f"to must be a string, got {type(to).__name__}")
        normalize_recipient(to)


def _template_from_wire(part: Any) -> Template:
    template = strict_keys(part, {"name", "language", "components"}, "template")
    language = strict_keys(template.pop("language", None), {"code", "policy"}, "template.language")
    if "policy" in language:
        template["language_policy"] = language["policy"]
    return Template.model_validate({**template, "language": language.get("code")})
