"""What every message model shares: limits as named constants, constrained strings, bases.

Models are frozen pydantic models that refuse unknown fields; field names are the wire names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints

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
FLOW_CTA_MAX = 30  # Meta's current schema; older docs said 20
FLOW_MESSAGE_VERSION = "3"
EMOJI_MAX = 16
CTA_DISPLAY_TEXT_MAX = 20
JSON_DEPTH_MAX = 32
PRODUCTS_MAX = 30

FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


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
RowDescription = Annotated[
    str, StringConstraints(max_length=ROW_DESCRIPTION_MAX)
]  # Meta: may be ""
RowId = Annotated[str, StringConstraints(min_length=1, max_length=ROW_ID_MAX)]
SectionTitle = Annotated[str, StringConstraints(min_length=1, max_length=SECTION_TITLE_MAX)]
FlowCta = Annotated[str, StringConstraints(min_length=1, max_length=FLOW_CTA_MAX)]
Emoji = Annotated[str, StringConstraints(max_length=EMOJI_MAX)]
CtaDisplayText = Annotated[str, StringConstraints(min_length=1, max_length=CTA_DISPLAY_TEXT_MAX)]


class Part(BaseModel):
    """A nested piece of a message; accepts a plain dict of its wire fields too."""

    model_config = FROZEN

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, mode="json")


class MessageModel(Part):
    """A whole message: `to_wire()` is its `{"type": T, T: {...}}` fragment of the body."""

    wire_type: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready `{"type": ..., <type>: {...}}` part of the request body."""
        return {"type": self.wire_type, self.wire_type: self.wire()}


def strict_keys(data: Any, allowed: set[str], where: str) -> dict[str, Any]:
    """`data` as a dict after refusing anything but a mapping with only the `allowed` keys.

    The wire readers use it so that a field the models do not keep is refused, never dropped.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"{where}: unexpected field(s) {', '.join(sorted(map(str, unknown)))}")
    return dict(data)


def refuse_sdk_switches(model: type[BaseModel], data: Any, where: str) -> Any:
    """`data` after refusing the model's SDK-only switches (fields it never sends, such as
    `https_only`): read from the wire they would be dropped on the way back."""
    if isinstance(data, Mapping):
        switches = sorted(k for k, f in model.model_fields.items() if f.exclude and k in data)
        if switches:
            raise ValueError(
                f"{where}: {', '.join(switches)} is a switch of this SDK, not a field of the API"
            )
    return data


def require_unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is repeated; each must be unique")
        seen.add(value)


def check_json(value: Any, where: str, depth: int = 0) -> None:
    """Refuse what JSON cannot carry, naming the place: NaN/inf, sets, bytes, deep nesting.

    Iterates at most `JSON_DEPTH_MAX` levels, so hostile nesting never reaches the recursion
    limit.
    """
    if depth > JSON_DEPTH_MAX:
        raise ValueError(f"{where}: nested more than {JSON_DEPTH_MAX} levels deep")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a JSON number (NaN and infinity are not)")
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: text with a lone surrogate is not valid UTF-8") from None
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: object keys must be strings, got {key!r}")
            check_json(item, f"{where}.{key}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json(item, f"{where}[{i}]", depth + 1)
        return
    raise ValueError(f"{where}: a {type(value).__name__} is not JSON (use a list, str or number)")
