"""Interactive messages: reply buttons, lists, URL buttons, location and address requests, flows.

`interactive_from_wire` reads the API's `interactive` object back, refusing any field the
models would not send again (nothing is dropped or rewritten).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from typing_extensions import Self

from ._media import Document, Image, Video
from ._message_base import (
    BUTTONS_MAX,
    FLOW_MESSAGE_VERSION,
    ROWS_MAX,
    SECTIONS_MAX,
    ButtonId,
    ButtonTitle,
    CtaDisplayText,
    FlowCta,
    Footer,
    HeaderText,
    InteractiveBody,
    ListBody,
    ListButton,
    MessageModel,
    NonEmpty,
    Part,
    RowDescription,
    RowId,
    RowTitle,
    SectionTitle,
    check_json,
    refuse_sdk_switches,
    require_unique,
    strict_keys,
)


def _header_wire(header: str | Image | Video | Document) -> dict[str, Any]:
    if isinstance(header, str):
        return {"type": "text", "text": header}
    return header.to_wire()


def _coerce_header(value: Any) -> Any:
    """Accept the wire shape `{"type": "text", "text": ...}` / `{"type": "image", ...}` too."""
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "text":
            return strict_keys(value, {"type", "text"}, "header").get("text")
        media = {"image": Image, "video": Video, "document": Document}.get(str(kind))
        if media is None:
            raise ValueError("header must be text, or an Image, Video or Document")
        part = strict_keys(value, {"type", str(kind)}, "header").get(str(kind))
        return media.model_validate(refuse_sdk_switches(media, part, f"header.{kind}"))
    return value


class _Interactive(MessageModel):
    """The `interactive` envelope: optional header, body text, optional footer, an action."""

    wire_type: ClassVar[str] = "interactive"
    interactive_type: ClassVar[str]

    @field_validator("header", mode="before", check_fields=False)
    @classmethod
    def _header_from_wire(cls, value: Any) -> Any:
        return _coerce_header(value)

    def _action(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        """The model from the envelope's fields (header, body, footer) and its `action`."""
        raise NotImplementedError

    def to_wire(self) -> dict[str, Any]:
        interactive: dict[str, Any] = {"type": self.interactive_type}
        header = getattr(self, "header", None)
        if header is not None:
            interactive["header"] = _header_wire(header)
        body = getattr(self, "body", None)
        if body is not None:
            interactive["body"] = {"text": body}
        footer = getattr(self, "footer", None)
        if footer is not None:
            interactive["footer"] = {"text": footer}
        interactive["action"] = self._action()
        return {"type": "interactive", "interactive": interactive}


class ReplyButton(Part):
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

    @field_validator("header")
    @classmethod
    def _media_header_has_no_caption(cls, header: Any) -> Any:
        if isinstance(header, Image | Video | Document) and header.caption is not None:
            raise ValueError("a media header takes no caption")
        return header

    @field_validator("buttons")
    @classmethod
    def _unique(cls, buttons: list[ReplyButton]) -> list[ReplyButton]:
        require_unique("button id", [b.id for b in buttons])
        require_unique("button title", [b.title for b in buttons])
        return buttons

    def _action(self) -> dict[str, Any]:
        return {"buttons": [{"type": "reply", "reply": b.wire()} for b in self.buttons]}

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        action = strict_keys(action, {"buttons"}, "interactive.action")
        buttons = action.get("buttons")
        if not isinstance(buttons, list):
            raise ValueError("interactive.action.buttons must be a list")
        replies = []
        for button in buttons:
            button = strict_keys(button, {"type", "reply"}, "interactive.action.buttons[]")
            if button.get("type") != "reply":
                raise ValueError(
                    f"button type {button.get('type')!r} is not supported: "
                    "reply buttons are type 'reply' (a URL button is UrlButton)"
                )
            replies.append(button.get("reply"))
        return cls.model_validate({**fields, "buttons": replies})


class ListRow(Part):
    """A list row: `id` <=200 (unique), `title` <=24, `description` <=72."""

    id: RowId
    title: RowTitle
    description: RowDescription | None = None


class ListSection(Part):
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

    @field_validator("sections")
    @classmethod
    def _rows_and_titles(cls, sections: list[ListSection]) -> list[ListSection]:
        rows = [row for section in sections for row in section.rows]
        if len(rows) > ROWS_MAX:
            raise ValueError(f"a list holds at most {ROWS_MAX} rows in total, got {len(rows)}")
        require_unique("row id", [row.id for row in rows])
        if len(sections) > 1 and any(s.title is None for s in sections):
            raise ValueError("every section needs a title when there is more than one")
        return sections

    def _action(self) -> dict[str, Any]:
        return {"button": self.button, "sections": [s.wire() for s in self.sections]}

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        action = strict_keys(action, {"button", "sections"}, "interactive.action")
        return cls.model_validate({**fields, **action})


class AddressRequest(_Interactive):
    """Ask for a shipping address; `country` is `IN` or `SG`, the only ones the API serves."""

    interactive_type: ClassVar[str] = "address_message"
    body: InteractiveBody
    country: Literal["IN", "SG"] = "IN"
    values: dict[str, Any] | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _values_are_json(cls, values: Any) -> Any:
        check_json(values, "values")
        return values

    def _action(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {"country": self.country}
        if self.values is not None:
            parameters["values"] = self.values
        return {"name": "address_message", "parameters": parameters}

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        parameters = _named_action(action, "address_message", {"country", "values"})
        if "country" not in parameters:
            raise ValueError("address_message parameters: missing 'country'")
        return cls.model_validate({**fields, **parameters})


#: The keys of a flow action's `parameters`.
_FLOW_PARAMETERS = {
    "flow_message_version",
    "flow_token",
    "flow_id",
    "flow_name",
    "flow_cta",
    "flow_action",
    "flow_action_payload",
    "mode",
}


class FlowMessage(_Interactive):
    """Open a WhatsApp Flow: exactly one of `flow_id`/`flow_name`, a CTA of up to 30 characters.

    `screen` and `data` form `flow_action_payload` and belong to `flow_action="navigate"`
    only. `flow_token` and `flow_action` are always sent, with Meta's defaults when not given;
    a flow read from the wire without them is sent back without them (Meta's defaults apply).
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
    #: Parameters absent from the wire body this flow was read from, kept absent on the way back.
    _omitted: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("data", mode="before")
    @classmethod
    def _data_is_json(cls, data: Any) -> Any:
        check_json(data, "data")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> FlowMessage:
        if (self.flow_id is None) == (self.flow_name is None):
            raise ValueError("flow: give exactly one of 'flow_id' or 'flow_name'")
        if self.flow_action == "data_exchange" and (
            self.screen is not None or self.data is not None
        ):
            raise ValueError("flow: 'screen' and 'data' go with flow_action='navigate' only")
        if self.data is not None and self.screen is None:
            raise ValueError("flow: 'data' needs the 'screen' it is for")
        return self

    def _action(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {"flow_message_version": FLOW_MESSAGE_VERSION}
        if "flow_token" not in self._omitted:
            parameters["flow_token"] = self.flow_token
        if self.flow_id is not None:
            parameters["flow_id"] = self.flow_id
        else:
            parameters["flow_name"] = self.flow_name
        parameters["flow_cta"] = self.flow_cta
        if "flow_action" not in self._omitted:
            parameters["flow_action"] = self.flow_action
        if self.screen is not None:
            payload: dict[str, Any] = {"screen": self.screen}
            if self.data is not None:
                payload["data"] = self.data
            parameters["flow_action_payload"] = payload
        if self.mode is not None:
            parameters["mode"] = self.mode
        return {"name": "flow", "parameters": parameters}

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        parameters = _named_action(action, "flow", _FLOW_PARAMETERS)
        version = parameters.pop("flow_message_version", None)
        if version != FLOW_MESSAGE_VERSION:
            raise ValueError(
                f"flow_message_version must be {FLOW_MESSAGE_VERSION!r}, got {version!r}"
            )
        payload = parameters.pop("flow_action_payload", None)
        if payload is not None:
            payload = strict_keys(payload, {"screen", "data"}, "flow_action_payload")
            if "screen" not in payload:
                raise ValueError("flow_action_payload: missing 'screen'")
        message = cls.model_validate({**fields, **parameters, **(payload or {})})
        message._omitted = frozenset({"flow_token", "flow_action"} - set(parameters))
        return message


class UrlButton(_Interactive):
    """A call-to-action URL button (`cta_url`): label <=20, body <=1024, text or media header.

    Meta opens `url` (http or https) when the user taps the button labelled `display_text`.
    """

    interactive_type: ClassVar[str] = "cta_url"
    body: InteractiveBody
    display_text: CtaDisplayText
    url: NonEmpty
    header: HeaderText | Image | Video | Document | None = None
    footer: Footer | None = None

    @field_validator("url")
    @classmethod
    def _web_url(cls, url: str) -> str:
        if not url.lower().startswith(("https://", "http://")):
            raise ValueError("url must be an http:// or https:// URL")
        return url

    @field_validator("header")
    @classmethod
    def _media_header_has_no_caption(cls, header: Any) -> Any:
        if isinstance(header, Image | Video | Document) and header.caption is not None:
            raise ValueError("a media header takes no caption")
        return header

    def _action(self) -> dict[str, Any]:
        parameters = {"display_text": self.display_text, "url": self.url}
        return {"name": "cta_url", "parameters": parameters}

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        parameters = _named_action(action, "cta_url", {"display_text", "url"})
        return cls.model_validate({**fields, **parameters})


class LocationRequest(_Interactive):
    """Ask the user to share their location (`location_request_message`), body <=1024."""

    interactive_type: ClassVar[str] = "location_request_message"
    body: InteractiveBody

    def _action(self) -> dict[str, Any]:
        return {"name": "send_location"}

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        action = strict_keys(action, {"name"}, "interactive.action")
        if action.get("name") != "send_location":
            raise ValueError("interactive.action.name must be 'send_location'")
        return cls.model_validate(fields)


def _named_action(action: dict[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
    """The `parameters` of an action `{"name": name, "parameters": {...}}`, checked: only the
    `allowed` keys (a field of the envelope inside `parameters` is refused, not moved)."""
    action = strict_keys(action, {"name", "parameters"}, "interactive.action")
    if action.get("name") != name:
        raise ValueError(f"interactive.action.name must be {name!r}, got {action.get('name')!r}")
    parameters = action.get("parameters")
    if not isinstance(parameters, Mapping):
        raise ValueError("interactive.action.parameters must be a JSON object")
    return strict_keys(parameters, allowed, "interactive.action.parameters")


def interactive_from_wire(
    interactive: Mapping[str, Any], types: Mapping[str, type[_Interactive]]
) -> _Interactive:
    """The model for an `interactive` object; refuses any field it would not send back."""
    data = strict_keys(interactive, {"type", "header", "body", "footer", "action"}, "interactive")
    kind = data.get("type")
    if kind is None:
        raise ValueError("interactive: missing 'type'")
    model = types.get(str(kind))
    if model is None:
        raise ValueError(f"interactive.type: unknown interactive type {kind!r}")
    fields: dict[str, Any] = {}
    if "header" in data:
        fields["header"] = data["header"]
    for part in ("body", "footer"):
        if part in data:
            fields[part] = strict_keys(data[part], {"text"}, f"interactive.{part}").get("text")
    action = data.get("action")
    if action is None:
        raise ValueError("interactive: missing 'action'")
    return model._from_action(fields, strict_keys(action, set(action), "interactive.action"))
