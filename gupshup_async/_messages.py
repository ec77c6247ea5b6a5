"""The message models and the `Message` union; `message_from_wire` reads the API's JSON shape.

Each type is a frozen pydantic model (`extra="forbid"`) whose fields are the wire names and
whose `to_wire()` is its `{"type": T, T: {...}}` part of the body. They know nothing of HTTP,
recipients or tokens. Bad input raises pydantic's `ValidationError` (a `ValueError`) naming the
field and the limit, in the caller's code, before any request. Text, location, reaction and
template live here; media, contacts and interactive types in their own modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeAlias, cast

from pydantic import Field, field_validator

from ._contacts import Contacts
from ._interactive import AddressRequest, FlowMessage, ListMessage, ReplyButtons
from ._media import Audio, Document, Image, Sticker, Video
from ._message_base import Emoji, MessageModel, NonEmpty, TextBody


class Text(MessageModel):
    """A text message: 1-4096 characters; `preview_url` renders the first link's preview."""

    wire_type: ClassVar[str] = "text"
    body: TextBody
    preview_url: bool | None = None


class Location(MessageModel):
    """A map pin: latitude -90..90 and longitude -180..180 degrees, optional name and address."""

    wire_type: ClassVar[str] = "location"
    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    name: NonEmpty | None = None
    address: NonEmpty | None = None


class Reaction(MessageModel):
    """An emoji reaction to a received message; an empty `emoji` removes the reaction."""

    wire_type: ClassVar[str] = "reaction"
    message_id: NonEmpty
    emoji: Emoji

    @field_validator("emoji")
    @classmethod
    def _real_emoji(cls, emoji: str) -> str:
        if emoji and _is_plain_text(emoji):
            raise ValueError(
                "emoji must be the emoji character itself (e.g. '\\N{THUMBS UP SIGN}'), "
                "not text or UTF-8 bytes decoded as Latin-1"
            )
        return emoji


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


class Template(MessageModel):
    """A pre-approved template: its `name`, a `language` code such as "en", and components."""

    wire_type: ClassVar[str] = "template"
    name: NonEmpty
    language: NonEmpty
    components: list[dict[str, Any]] = Field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        template: dict[str, Any] = {"name": self.name, "language": {"code": self.language}}
        if self.components:
            template["components"] = self.components
        return {"type": "template", "template": template}


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
    | AddressRequest
    | FlowMessage
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
    AddressRequest,
    FlowMessage,
    Template,
)


def message_from_wire(data: Mapping[str, Any]) -> Message:
    """Build the model from the API's JSON shape, e.g. `{"type": "image", "image": {...}}`.

    The inverse of `to_wire()`, for messages kept in files (the campaign's `--message-file`).
    Raises `ValueError` for an unknown type or a payload the models refuse.
    """
    kind = data.get("type")
    simple: dict[str, type[MessageModel]] = {
        m.wire_type: m for m in MESSAGE_TYPES if m.wire_type not in ("interactive", "template")
    }
    extra = set(data) - {"type", str(kind), "messaging_product", "recipient_type", "to"}
    if extra:
        raise ValueError(f"unexpected top-level field(s): {', '.join(sorted(extra))}")
    if kind == "contacts":
        return Contacts.model_validate({"contacts": data.get("contacts")})
    if kind in simple:
        return cast(Message, simple[str(kind)].model_validate(data.get(str(kind))))
    if kind == "template":
        template = dict(data.get("template") or {})
        language = template.pop("language", None)
        if isinstance(language, Mapping):
            language = language.get("code")
        return Template.model_validate({**template, "language": language})
    if kind == "interactive":
        return _interactive_from_wire(dict(data.get("interactive") or {}))
    raise ValueError(f"type: unknown message type {kind!r}")


def _interactive_from_wire(interactive: dict[str, Any]) -> Message:
    kind = interactive.pop("type", None)
    action = dict(interactive.pop("action", None) or {})
    fields: dict[str, Any] = {"body": (interactive.pop("body", None) or {}).get("text")}
    if "header" in interactive:
        fields["header"] = interactive.pop("header")
    if "footer" in interactive:
        fields["footer"] = (interactive.pop("footer") or {}).get("text")
    if interactive:
        raise ValueError(f"interactive: unexpected field(s) {', '.join(sorted(interactive))}")
    if kind == "button":
        buttons = [
            b.get("reply") if isinstance(b, Mapping) else b for b in action.pop("buttons", [])
        ]
        return ReplyButtons.model_validate({**fields, "buttons": buttons, **action})
    if kind == "list":
        return ListMessage.model_validate({**fields, **action})
    parameters = dict(action.get("parameters") or {})
    if kind == "address_message":
        return AddressRequest.model_validate({**fields, **parameters})
    if kind == "flow":
        parameters.pop("flow_message_version", None)
        payload = parameters.pop("flow_action_payload", None) or {}
        return FlowMessage.model_validate({**fields, **parameters, **payload})
    raise ValueError(f"interactive.type: unknown interactive type {kind!r}")
