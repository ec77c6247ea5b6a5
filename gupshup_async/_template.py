"""Template messages and their typed components: header, body and button parameters.

Meta fills a pre-approved template's variables from `components`: one header parameter
(text, image, video, document or location), body parameters (text, currency, date_time) and
one parameter per button (quick-reply payload, URL suffix, coupon code, flow action). Raw
dicts stay accepted: a dict of a kind the SDK knows is checked by the typed model and sent as
written; any other dict is only checked to be JSON (finite numbers, no sets or bytes, at most
`JSON_DEPTH_MAX` levels deep), so nothing the API cannot parse leaves the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import Field, StringConstraints, field_validator, model_validator

from ._media import Document, Image, Video
from ._message_base import MessageModel, NonEmpty, Part, check_json, require_unique

HEADER_TEXT_PARAMETER_MAX = 60
BODY_TEXT_PARAMETER_MAX = 32768  # Meta's schema (TextParameter.maxLength)
COUPON_CODE_MAX = 15
TEMPLATE_BUTTONS_MAX = 10  # button indexes 0-9

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
ButtonIndex = (
    Annotated[int, Field(ge=0, le=TEMPLATE_BUTTONS_MAX - 1, strict=True)]
    | Annotated[str, StringConstraints(pattern=r"^[0-9]$")]
)


class TextParameter(Part):
    """A text variable: <=60 characters in a header, <=32768 in the body; a URL suffix."""

    type: Literal["text"] = "text"
    text: NonEmpty
    parameter_name: NonEmpty | None = None


class Currency(Part):
    """An amount: `amount_1000` is the amount times 1000; `code` is ISO 4217 (e.g. "USD")."""

    fallback_value: NonEmpty
    code: CurrencyCode
    amount_1000: Annotated[int, Field(strict=True)]


class CurrencyParameter(Part):
    """A currency variable of the body."""

    type: Literal["currency"] = "currency"
    currency: Currency
    parameter_name: NonEmpty | None = None


class DateTime(Part):
    """A date: Cloud API always shows `fallback_value`; the other fields are kept as given."""

    fallback_value: NonEmpty
    calendar: NonEmpty | None = None
    year: Annotated[int, Field(strict=True)] | None = None
    month: Annotated[int, Field(strict=True, ge=1, le=12)] | None = None
    day_of_month: Annotated[int, Field(strict=True, ge=1, le=31)] | None = None
    day_of_week: Annotated[int, Field(strict=True, ge=1, le=7)] | None = None
    hour: Annotated[int, Field(strict=True, ge=0, le=23)] | None = None
    minute: Annotated[int, Field(strict=True, ge=0, le=59)] | None = None


class DateTimeParameter(Part):
    """A date-time variable of the body."""

    type: Literal["date_time"] = "date_time"
    date_time: DateTime
    parameter_name: NonEmpty | None = None


def _no_caption(media: Any) -> Any:
    if getattr(media, "caption", None) is not None:
        raise ValueError("template media takes no caption")
    return media


class ImageParameter(Part):
    """An image header (no caption)."""

    type: Literal["image"] = "image"
    image: Image

    _caption = field_validator("image")(_no_caption)

    def wire(self) -> dict[str, Any]:
        return {"type": "image", "image": self.image.wire()}


class VideoParameter(Part):
    """A video header (no caption)."""

    type: Literal["video"] = "video"
    video: Video

    _caption = field_validator("video")(_no_caption)

    def wire(self) -> dict[str, Any]:
        return {"type": "video", "video": self.video.wire()}


class DocumentParameter(Part):
    """A document header (PDF only, says Meta; no caption; `filename` allowed)."""

    type: Literal["document"] = "document"
    document: Document

    _caption = field_validator("document")(_no_caption)

    def wire(self) -> dict[str, Any]:
        return {"type": "document", "document": self.document.wire()}


Degrees = (
    Annotated[float, Field(allow_inf_nan=False, strict=True)]
    | Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,3}(\.[0-9]+)?$")]
)


class TemplateLocation(Part):
    """A location header's map pin: latitude -90..90, longitude -180..180.

    Meta's template guide writes the degrees as strings, its location message as numbers;
    either is kept as written.
    """

    latitude: Degrees
    longitude: Degrees
    name: NonEmpty | None = None
    address: NonEmpty | None = None

    @model_validator(mode="after")
    def _in_range(self) -> TemplateLocation:
        if not -90 <= float(self.latitude) <= 90:
            raise ValueError(f"latitude must be -90..90 degrees, got {self.latitude}")
        if not -180 <= float(self.longitude) <= 180:
            raise ValueError(f"longitude must be -180..180 degrees, got {self.longitude}")
        return self


class LocationParameter(Part):
    """A location header."""

    type: Literal["location"] = "location"
    location: TemplateLocation


HeaderParameter: TypeAlias = Annotated[
    TextParameter | ImageParameter | VideoParameter | DocumentParameter | LocationParameter,
    Field(discriminator="type"),
]
BodyParameter: TypeAlias = Annotated[
    TextParameter | CurrencyParameter | DateTimeParameter, Field(discriminator="type")
]


class TemplateHeader(Part):
    """The header's one variable: text (<=60), image, video, document or location."""

    type: Literal["header"] = "header"
    parameters: Annotated[list[HeaderParameter], Field(min_length=1, max_length=1)]

    @field_validator("parameters")
    @classmethod
    def _short_text(cls, parameters: list[Any]) -> list[Any]:
        for parameter in parameters:
            if (
                isinstance(parameter, TextParameter)
                and len(parameter.text) > HEADER_TEXT_PARAMETER_MAX
            ):
                raise ValueError(
                    f"a header text parameter holds at most {HEADER_TEXT_PARAMETER_MAX} "
                    f"characters, got {len(parameter.text)}"
                )
        return parameters

    def wire(self) -> dict[str, Any]:
        return {"type": "header", "parameters": [p.wire() for p in self.parameters]}


class TemplateBody(Part):
    """The body's variables, in order: text (<=32768), currency or date_time."""

    type: Literal["body"] = "body"
    parameters: Annotated[list[BodyParameter], Field(min_length=1)]

    @field_validator("parameters")
    @classmethod
    def _text_limit(cls, parameters: list[Any]) -> list[Any]:
        for parameter in parameters:
            if (
                isinstance(parameter, TextParameter)
                and len(parameter.text) > BODY_TEXT_PARAMETER_MAX
            ):
                raise ValueError(
                    f"a body text parameter holds at most {BODY_TEXT_PARAMETER_MAX} "
                    f"characters, got {len(parameter.text)}"
                )
        return parameters


class PayloadParameter(Part):
    """A quick-reply button's payload, returned to you when the user taps it."""

    type: Literal["payload"] = "payload"
    payload: NonEmpty


class CouponCodeParameter(Part):
    """A copy-code button's coupon code, at most 15 characters."""

    type: Literal["coupon_code"] = "coupon_code"
    coupon_code: Annotated[str, StringConstraints(min_length=1, max_length=COUPON_CODE_MAX)]


class ActionParameter(Part):
    """A flow or catalog button's action: e.g. `{"flow_token": ..., "flow_action_data": {}}`."""

    type: Literal["action"] = "action"
    action: dict[str, Any]

    @field_validator("action", mode="before")
    @classmethod
    def _json(cls, action: Any) -> Any:
        check_json(action, "action")
        return action


ButtonParameter: TypeAlias = Annotated[
    PayloadParameter | TextParameter | CouponCodeParameter | ActionParameter,
    Field(discriminator="type"),
]

_BUTTON_PARAMETER: dict[str, type[Part]] = {
    "quick_reply": PayloadParameter,
    "url": TextParameter,
    "copy_code": CouponCodeParameter,
    "flow": ActionParameter,
    "catalog": ActionParameter,
}

_PARAMETER_NAME: dict[type[Part], str] = {
    PayloadParameter: "payload",
    TextParameter: "text",
    CouponCodeParameter: "coupon_code",
    ActionParameter: "action",
}


class TemplateButton(Part):
    """The one variable of button `index` (0-9): its `sub_type` says which kind it takes.

    quick_reply: a payload; url: the text appended to the template's URL; copy_code: a coupon
    code; flow and catalog: an action. `sub_type` is matched in any case (Meta's guides write
    both "url" and "COPY_CODE") and sent as written.
    """

    type: Literal["button"] = "button"
    sub_type: NonEmpty
    index: ButtonIndex
    parameters: Annotated[list[ButtonParameter], Field(min_length=1, max_length=1)]

    @model_validator(mode="after")
    def _parameter_fits_the_button(self) -> TemplateButton:
        wanted = _BUTTON_PARAMETER.get(self.sub_type.lower())
        if wanted is None:
            raise ValueError(
                f"sub_type {self.sub_type!r}: a typed button is one of "
                f"{', '.join(_BUTTON_PARAMETER)} (any case); pass other kinds as a dict"
            )
        for parameter in self.parameters:
            if not isinstance(parameter, wanted):
                raise ValueError(
                    f"a {self.sub_type} button takes a {_PARAMETER_NAME[wanted]!r} "
                    f"parameter, got {parameter.type!r}"
                )
        return self


TemplateComponent: TypeAlias = Annotated[
    TemplateHeader | TemplateBody | TemplateButton, Field(discriminator="type")
]
_TYPED: dict[str, type[Part]] = {
    "header": TemplateHeader,
    "body": TemplateBody,
    "button": TemplateButton,
}


class Template(MessageModel):
    """A pre-approved template: its `name`, a `language` code such as "en", and components.

    `components` holds typed parts (`TemplateHeader`, `TemplateBody`, `TemplateButton`) or
    raw dicts; at most one header and one body, ten buttons with distinct indexes.
    `language_policy` is Meta's optional `language.policy` ("deterministic").
    """

    wire_type: ClassVar[str] = "template"
    name: NonEmpty
    language: NonEmpty
    language_policy: Literal["deterministic"] | None = None
    components: list[TemplateHeader | TemplateBody | TemplateButton | dict[str, Any]] | None = None

    @field_validator("components", mode="before")
    @classmethod
    def _raw_components_are_checked(cls, components: Any) -> Any:
        if not isinstance(components, list):
            return components
        for i, component in enumerate(components):
            if isinstance(component, Mapping):
                check_json(component, f"components[{i}]")
                typed = _TYPED.get(str(component.get("type")))
                if typed is not None and _is_typed_kind(component):
                    typed.model_validate(component)  # the same limits as a typed part
        return components

    @field_validator("components")
    @classmethod
    def _counts(cls, components: list[Any] | None) -> list[Any] | None:
        if components is None:
            return None
        kinds = [c.get("type") if isinstance(c, dict) else c.type for c in components]
        for kind in ("header", "body"):
            if kinds.count(kind) > 1:
                raise ValueError(f"a template has at most one {kind} component")
        indexes = [
            str(c.get("index") if isinstance(c, dict) else c.index)
            for c, kind in zip(components, kinds, strict=True)
            if kind == "button"
        ]
        if len(indexes) > TEMPLATE_BUTTONS_MAX:
            raise ValueError(f"a template has at most {TEMPLATE_BUTTONS_MAX} buttons")
        require_unique("button index", indexes)
        return components

    def to_wire(self) -> dict[str, Any]:
        language: dict[str, Any] = {"code": self.language}
        if self.language_policy is not None:
            language["policy"] = self.language_policy
        template: dict[str, Any] = {"name": self.name, "language": language}
        if self.components is not None:
            template["components"] = [
                c if isinstance(c, dict) else c.wire() for c in self.components
            ]
        return {"type": "template", "template": template}


def _is_typed_kind(component: Mapping[str, Any]) -> bool:
    """A raw button of a sub_type the SDK does not model (e.g. "CATALOG", "mpm") is kept raw."""
    if component.get("type") != "button":
        return True
    return str(component.get("sub_type")).lower() in _BUTTON_PARAMETER
