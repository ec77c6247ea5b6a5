"""The v3 message models: one frozen pydantic model per type, limits as named constants.

Field names are the wire names. Each model knows its own JSON fragment (`to_wire()`); it knows
nothing of HTTP, recipients or tokens. Bad input raises pydantic's `ValidationError` (a
`ValueError`) naming the field and the limit, in the caller's code, before any request.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeAlias, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

TEXT_BODY_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
LIST_BODY_MAX = 4096
SECTIONS_MAX = 10
ROWS_MAX = 10
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
SECTION_TITLE_MAX = 24
CONTACTS_MAX = 257
FLOW_CTA_MAX = 20
FLOW_MESSAGE_VERSION = "3"
EMOJI_MAX = 16
ADDRESS_COUNTRIES = ("IN", "SG")

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


NonEmpty = Annotated[str, StringConstraints(min_length=1)]
TextBody = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_BODY_MAX)]
Caption = Annotated[str, StringConstraints(min_length=1, max_length=CAPTION_MAX)]
InteractiveBody = Annotated[str, StringConstraints(min_length=1, max_length=INTERACTIVE_BODY_MAX)]
HeaderText = Annotated[str, StringConstraints(min_length=1, max_length=HEADER_TEXT_MAX)]
Footer = Annotated[str, StringConstraints(min_length=1, max_length=FOOTER_MAX)]
ButtonTitle = Annotated[str, StringConstraints(min_length=1, max_length=BUTTON_TITLE_MAX)]
ButtonId = Annotated[str, StringConstraints(min_length=1, max_length=BUTTON_ID_MAX)]
ListButton = Annotated[str, StringConstraints(min_length=1, max_length=LIST_BUTTON_MAX)]
ListBody = Annotated[str, StringConstraints(min_length=1, max_length=LIST_BODY_MAX)]
RowTitle = Annotated[str, StringConstraints(min_length=1, max_length=ROW_TITLE_MAX)]
RowDescription = Annotated[str, StringConstraints(min_length=1, max_length=ROW_DESCRIPTION_MAX)]
RowId = Annotated[str, StringConstraints(min_length=1, max_length=ROW_ID_MAX)]
SectionTitle = Annotated[str, StringConstraints(min_length=1, max_length=SECTION_TITLE_MAX)]
FlowCta = Annotated[str, StringConstraints(min_length=1, max_length=FLOW_CTA_MAX)]
Emoji = Annotated[str, StringConstraints(max_length=EMOJI_MAX)]


class _Part(BaseModel):
    """A nested piece of a message; accepts a plain dict of its wire fields too."""

    model_config = _FROZEN

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, mode="json")


class _Message(_Part):
    """A whole message: `to_wire()` is its `{"type": T, T: {...}}` fragment of the body."""

    wire_type: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready `{"type": ..., <type>: {...}}` part of the request body."""
        return {"type": self.wire_type, self.wire_type: self.wire()}


# ---------------------------------------------------------------- text


class Text(_Message):
    """A text message: 1-4096 characters; `preview_url` renders the first link's preview."""

    wire_type: ClassVar[str] = "text"
    body: TextBody
    preview_url: bool | None = None


# ---------------------------------------------------------------- media


class _Media(_Message):
    """Media by exactly one of an uploaded media `id` or an https `link`."""

    id: NonEmpty | None = None
    link: NonEmpty | None = None

    @field_validator("link")
    @classmethod
    def _https_only(cls, link: str | None) -> str | None:
        if link is not None and not link.lower().startswith("https://"):
            raise ValueError("link must be an https:// URL")
        return link

    @model_validator(mode="after")
    def _exactly_one_source(self) -> _Media:
        if (self.id is None) == (self.link is None):
            raise ValueError(f"{self.wire_type}: give exactly one of 'id' or 'link'")
        return self


class Image(_Media):
    """An image (jpeg/png, up to 5 MB) with an optional caption of up to 1024 characters."""

    wire_type: ClassVar[str] = "image"
    caption: Caption | None = None


class Video(_Media):
    """A video (mp4/3gpp, up to 16 MB) with an optional caption of up to 1024 characters."""

    wire_type: ClassVar[str] = "video"
    caption: Caption | None = None


class Document(_Media):
    """A document (pdf/txt/office, up to 100 MB), optional caption (<=1024) and filename."""

    wire_type: ClassVar[str] = "document"
    caption: Caption | None = None
    filename: NonEmpty | None = None


class Audio(_Media):
    """An audio clip (aac/amr/mpeg/mp4/ogg, up to 16 MB); audio takes no caption."""

    wire_type: ClassVar[str] = "audio"


class Sticker(_Media):
    """A webp sticker (100 KB static, 500 KB animated); takes no caption.

    The reference passes a URL as the media `id`: a URL belongs in `link`, and an `id` that
    looks like one is refused.
    """

    wire_type: ClassVar[str] = "sticker"

    @field_validator("id")
    @classmethod
    def _id_is_not_a_url(cls, media_id: str | None) -> str | None:
        if media_id is not None and "://" in media_id:
            raise ValueError("id is a media id from an upload; pass a URL as 'link' instead")
        return media_id


# ---------------------------------------------------------------- location


class Location(_Message):
    """A map pin: latitude -90..90 and longitude -180..180 degrees, optional name and address."""

    wire_type: ClassVar[str] = "location"
    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    name: NonEmpty | None = None
    address: NonEmpty | None = None


# ---------------------------------------------------------------- contacts


class ContactName(_Part):
    """`formatted_name` plus at least one of the other name fields, as the API requires."""

    formatted_name: NonEmpty
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None

    @model_validator(mode="after")
    def _one_more_name_field(self) -> ContactName:
        others = (self.first_name, self.last_name, self.middle_name, self.suffix, self.prefix)
        if not any(others):
            raise ValueError(
                "name needs one of first_name, last_name, middle_name, suffix or prefix "
                "besides formatted_name"
            )
        return self


class ContactAddress(_Part):
    """A postal address of a shared contact."""

    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class ContactEmail(_Part):
    """An e-mail address of a shared contact."""

    email: NonEmpty
    type: str | None = None


class ContactPhone(_Part):
    """A phone number of a shared contact; `wa_id` adds the WhatsApp chat button."""

    phone: NonEmpty
    type: str | None = None
    wa_id: str | None = None


class ContactUrl(_Part):
    """A web address of a shared contact."""

    url: NonEmpty
    type: str | None = None


class ContactOrg(_Part):
    """Where a shared contact works."""

    company: str | None = None
    department: str | None = None
    title: str | None = None


class Contact(_Part):
    """One contact card; `birthday` is `YYYY-MM-DD`."""

    name: ContactName
    addresses: list[ContactAddress] | None = None
    birthday: str | None = None
    emails: list[ContactEmail] | None = None
    org: ContactOrg | None = None
    phones: list[ContactPhone] | None = None
    urls: list[ContactUrl] | None = None

    @field_validator("birthday")
    @classmethod
    def _iso_date(cls, birthday: str | None) -> str | None:
        if birthday is None:
            return None
        try:
            if len(birthday) != 10:
                raise ValueError
            _dt.date.fromisoformat(birthday)
        except ValueError:
            raise ValueError("birthday must be a real date written YYYY-MM-DD") from None
        return birthday


class Contacts(_Message):
    """1-257 contact cards in one message."""

    wire_type: ClassVar[str] = "contacts"
    contacts: Annotated[list[Contact], Field(min_length=1, max_length=CONTACTS_MAX)]

    def to_wire(self) -> dict[str, Any]:
        return {"type": "contacts", "contacts": [c.wire() for c in self.contacts]}


# ---------------------------------------------------------------- reaction


class Reaction(_Message):
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


# ---------------------------------------------------------------- interactive


def _header_wire(header: str | Image | Video | Document) -> dict[str, Any]:
    if isinstance(header, str):
        return {"type": "text", "text": header}
    return header.to_wire()


def _coerce_header(value: Any) -> Any:
    """Accept the wire shape `{"type": "text", "text": ...}` / `{"type": "image", ...}` too."""
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "text":
            return value.get("text")
        media = {"image": Image, "video": Video, "document": Document}.get(str(kind))
        if media is None:
            raise ValueError("header must be text, or an Image, Video or Document")
        return media.model_validate(value.get(str(kind)))
    return value


class _Interactive(_Message):
    wire_type: ClassVar[str] = "interactive"
    interactive_type: ClassVar[str]

    def _action(self) -> dict[str, Any]:
        raise NotImplementedError

    def _envelope(self, header: Any, body: str, footer: str | None) -> dict[str, Any]:
        interactive: dict[str, Any] = {"type": self.interactive_type}
        if header is not None:
            interactive["header"] = _header_wire(header)
        interactive["body"] = {"text": body}
        if footer is not None:
            interactive["footer"] = {"text": footer}
        interactive["action"] = self._action()
        return {"type": "interactive", "interactive": interactive}


class ReplyButton(_Part):
    """One quick-reply button: `id` up to 256 characters, `title` up to 20; both unique."""

    id: ButtonId
    title: ButtonTitle


class ReplyButtons(_Interactive):
    """1-3 reply buttons under a body (<=1024); optional text (<=60) or media header, footer."""

    interactive_type: ClassVar[str] = "button"
    body: InteractiveBody
    buttons: Annotated[list[ReplyButton], Field(min_length=1, max_length=BUTTONS_MAX)]
    header: HeaderText | Image | Video | Document | None = None
    footer: Footer | None = None

    @field_validator("header", mode="before")
    @classmethod
    def _header_from_wire(cls, value: Any) -> Any:
        return _coerce_header(value)

    @field_validator("header")
    @classmethod
    def _media_header_has_no_caption(cls, header: Any) -> Any:
        if isinstance(header, Image | Video | Document) and header.caption is not None:
            raise ValueError("a media header takes no caption")
        return header

    @field_validator("buttons")
    @classmethod
    def _unique(cls, buttons: list[ReplyButton]) -> list[ReplyButton]:
        _require_unique("button id", [b.id for b in buttons])
        _require_unique("button title", [b.title for b in buttons])
        return buttons

    def _action(self) -> dict[str, Any]:
        return {"buttons": [{"type": "reply", "reply": b.wire()} for b in self.buttons]}

    def to_wire(self) -> dict[str, Any]:
        return self._envelope(self.header, self.body, self.footer)


class ListRow(_Part):
    """A list row: `id` <=200 (unique), `title` <=24, `description` <=72."""

    id: RowId
    title: RowTitle
    description: RowDescription | None = None


class ListSection(_Part):
    """A titled group of rows; the title (<=24) is required when there are several sections."""

    title: SectionTitle | None = None
    rows: Annotated[list[ListRow], Field(min_length=1, max_length=ROWS_MAX)]


class ListMessage(_Interactive):
    """A menu: button label <=20, 1-10 sections with 1-10 rows in total, body <=4096."""

    interactive_type: ClassVar[str] = "list"
    body: ListBody
    button: ListButton
    sections: Annotated[list[ListSection], Field(min_length=1, max_length=SECTIONS_MAX)]
    header: HeaderText | None = None
    footer: Footer | None = None

    @field_validator("header", mode="before")
    @classmethod
    def _header_from_wire(cls, value: Any) -> Any:
        return _coerce_header(value)

    @field_validator("sections")
    @classmethod
    def _rows_and_titles(cls, sections: list[ListSection]) -> list[ListSection]:
        rows = [row for section in sections for row in section.rows]
        if len(rows) > ROWS_MAX:
            raise ValueError(f"a list holds at most {ROWS_MAX} rows in total, got {len(rows)}")
        _require_unique("row id", [row.id for row in rows])
        if len(sections) > 1 and any(s.title is None for s in sections):
            raise ValueError("every section needs a title when there is more than one")
        return sections

    def _action(self) -> dict[str, Any]:
        return {"button": self.button, "sections": [s.wire() for s in self.sections]}

    def to_wire(self) -> dict[str, Any]:
        return self._envelope(self.header, self.body, self.footer)


class AddressRequest(_Interactive):
    """Ask for a shipping address; `country` is `IN` or `SG`, the only ones the API serves."""

    interactive_type: ClassVar[str] = "address_message"
    body: InteractiveBody
    country: Literal["IN", "SG"] = "IN"
    values: dict[str, Any] | None = None

    def _action(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {"country": self.country}
        if self.values is not None:
            parameters["values"] = self.values
        return {"name": "address_message", "parameters": parameters}

    def to_wire(self) -> dict[str, Any]:
        return self._envelope(None, self.body, None)


class FlowMessage(_Interactive):
    """Open a WhatsApp Flow: exactly one of `flow_id`/`flow_name`, a CTA of up to 20 characters.

    `screen` and `data` form `flow_action_payload` and belong to `flow_action="navigate"` only.
    """

    interactive_type: ClassVar[str] = "flow"
    body: InteractiveBody
    flow_cta: FlowCta
    flow_id: NonEmpty | None = None
    flow_name: NonEmpty | None = None
    flow_token: NonEmpty = "unused"
    flow_action: Literal["navigate", "data_exchange"] = "navigate"
    screen: NonEmpty | None = None
    data: dict[str, Any] | None = None
    mode: Literal["draft", "published"] | None = None
    header: HeaderText | None = None
    footer: Footer | None = None

    @field_validator("header", mode="before")
    @classmethod
    def _header_from_wire(cls, value: Any) -> Any:
        return _coerce_header(value)

    @model_validator(mode="after")
    def _consistent(self) -> FlowMessage:
        if (self.flow_id is None) == (self.flow_name is None):
            raise ValueError("flow: give exactly one of 'flow_id' or 'flow_name'")
        if self.flow_action != "navigate" and (self.screen is not None or self.data is not None):
            raise ValueError("flow: 'screen' and 'data' go with flow_action='navigate' only")
        if self.data is not None and self.screen is None:
            raise ValueError("flow: 'data' needs the 'screen' it is for")
        return self

    def _action(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "flow_message_version": FLOW_MESSAGE_VERSION,
            "flow_token": self.flow_token,
        }
        if self.flow_id is not None:
            parameters["flow_id"] = self.flow_id
        else:
            parameters["flow_name"] = self.flow_name
        parameters["flow_cta"] = self.flow_cta
        parameters["flow_action"] = self.flow_action
        if self.screen is not None:
            payload: dict[str, Any] = {"screen": self.screen}
            if self.data is not None:
                payload["data"] = self.data
            parameters["flow_action_payload"] = payload
        if self.mode is not None:
            parameters["mode"] = self.mode
        return {"name": "flow", "parameters": parameters}

    def to_wire(self) -> dict[str, Any]:
        return self._envelope(self.header, self.body, self.footer)


# ---------------------------------------------------------------- template


class Template(_Message):
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

MESSAGE_TYPES: tuple[type[_Message], ...] = (
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


def _require_unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is repeated; each must be unique")
        seen.add(value)


def message_from_wire(data: Mapping[str, Any]) -> Message:
    """Build the model from the API's JSON shape, e.g. `{"type": "image", "image": {...}}`.

    The inverse of `to_wire()`, for messages kept in files (the campaign's `--message-file`).
    Raises `ValueError` for an unknown type or a payload the models refuse.
    """
    kind = data.get("type")
    simple: dict[str, type[_Message]] = {
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
