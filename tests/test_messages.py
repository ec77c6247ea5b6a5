from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import gupshup_async as g
from gupshup_async._message_base import (
    BUTTON_ID_MAX,
    BUTTON_TITLE_MAX,
    CAPTION_MAX,
    CONTACTS_MAX,
    FLOW_CTA_MAX,
    FOOTER_MAX,
    HEADER_TEXT_MAX,
    INTERACTIVE_BODY_MAX,
    LIST_BODY_MAX,
    LIST_BUTTON_MAX,
    ROW_DESCRIPTION_MAX,
    ROW_ID_MAX,
    ROW_TITLE_MAX,
    SECTION_TITLE_MAX,
    TEXT_BODY_MAX,
)

from .reference_examples import CONTACT, EXAMPLES


def _rows(n: int, **row: Any) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "title": f"Row {i}", **row} for i in range(n)]


def _buttons(n: int) -> list[dict[str, str]]:
    return [{"id": f"b{i}", "title": f"B{i}"} for i in range(n)]


def _list(**overrides: Any) -> g.ListMessage:
    fields: dict[str, Any] = {"body": "b", "button": "Open", "sections": [{"rows": _rows(1)}]}
    return g.ListMessage(**{**fields, **overrides})


def _buttons_msg(**overrides: Any) -> g.ReplyButtons:
    return g.ReplyButtons(**{"body": "b", "buttons": _buttons(1), **overrides})


def _flow(**overrides: Any) -> g.FlowMessage:
    return g.FlowMessage(**{"body": "b", "flow_cta": "Go", "flow_id": "1", **overrides})


# (limit name, build(value) -> model, value at the limit, value past the limit, field in error)
LIMITS: list[tuple[str, Callable[[Any], Any], Any, Any, str]] = [
    ("text body", lambda v: g.Text(body=v), "x" * TEXT_BODY_MAX, "x" * (TEXT_BODY_MAX + 1), "body"),
    ("text body empty", lambda v: g.Text(body=v), "x", "", "body"),
    ("image caption", lambda v: g.Image(link="https://a/b.png", caption=v), "c" * CAPTION_MAX, "c" * (CAPTION_MAX + 1), "caption"),
    ("video caption", lambda v: g.Video(id="1", caption=v), "c" * CAPTION_MAX, "c" * (CAPTION_MAX + 1), "caption"),
    ("document caption", lambda v: g.Document(id="1", caption=v), "c" * CAPTION_MAX, "c" * (CAPTION_MAX + 1), "caption"),
    ("https only", lambda v: g.Image(link=v, https_only=True), "https://a/b.png", "http://a/b.png", "link"),
    ("web link", lambda v: g.Image(link=v), "http://a/b.png", "ftp://a/b.png", "link"),
    ("buttons count", lambda v: _buttons_msg(buttons=_buttons(v)), 3, 4, "buttons"),
    ("buttons at least one", lambda v: _buttons_msg(buttons=_buttons(v)), 1, 0, "buttons"),
    ("button title", lambda v: _buttons_msg(buttons=[{"id": "a", "title": v}]), "t" * BUTTON_TITLE_MAX, "t" * (BUTTON_TITLE_MAX + 1), "title"),
    ("button id", lambda v: _buttons_msg(buttons=[{"id": v, "title": "t"}]), "i" * BUTTON_ID_MAX, "i" * (BUTTON_ID_MAX + 1), "id"),
    ("buttons body", lambda v: _buttons_msg(body=v), "b" * INTERACTIVE_BODY_MAX, "b" * (INTERACTIVE_BODY_MAX + 1), "body"),
    ("buttons footer", lambda v: _buttons_msg(footer=v), "f" * FOOTER_MAX, "f" * (FOOTER_MAX + 1), "footer"),
    ("buttons header text", lambda v: _buttons_msg(header=v), "h" * HEADER_TEXT_MAX, "h" * (HEADER_TEXT_MAX + 1), "header"),
    ("list button", lambda v: _list(button=v), "b" * LIST_BUTTON_MAX, "b" * (LIST_BUTTON_MAX + 1), "button"),
    ("list sections", lambda v: _list(sections=[{"title": f"S{i}", "rows": [{"id": f"s{i}", "title": "t"}]} for i in range(v)]), 10, 11, "sections"),
    ("list rows in total", lambda v: _list(sections=[{"title": "A", "rows": _rows(5)}, {"title": "B", "rows": [{"id": f"x{i}", "title": "x"} for i in range(v - 5)]}]), 10, 11, "sections"),
    ("list row title", lambda v: _list(sections=[{"rows": [{"id": "1", "title": v}]}]), "t" * ROW_TITLE_MAX, "t" * (ROW_TITLE_MAX + 1), "title"),
    ("list row description", lambda v: _list(sections=[{"rows": _rows(1, description=v)}]), "d" * ROW_DESCRIPTION_MAX, "d" * (ROW_DESCRIPTION_MAX + 1), "description"),
    ("list row id", lambda v: _list(sections=[{"rows": [{"id": v, "title": "t"}]}]), "i" * ROW_ID_MAX, "i" * (ROW_ID_MAX + 1), "id"),
    ("list section title", lambda v: _list(sections=[{"title": v, "rows": _rows(1)}]), "s" * SECTION_TITLE_MAX, "s" * (SECTION_TITLE_MAX + 1), "title"),
    ("list body", lambda v: _list(body=v), "b" * LIST_BODY_MAX, "b" * (LIST_BODY_MAX + 1), "body"),
    ("list header", lambda v: _list(header=v), "h" * HEADER_TEXT_MAX, "h" * (HEADER_TEXT_MAX + 1), "header"),
    ("list footer", lambda v: _list(footer=v), "f" * FOOTER_MAX, "f" * (FOOTER_MAX + 1), "footer"),
    ("contacts count", lambda v: g.Contacts(contacts=[CONTACT] * v), CONTACTS_MAX, CONTACTS_MAX + 1, "contacts"),
    ("contacts at least one", lambda v: g.Contacts(contacts=[CONTACT] * v), 1, 0, "contacts"),
    ("latitude", lambda v: g.Location(latitude=v, longitude=0), 90, 90.0001, "latitude"),
    ("latitude low", lambda v: g.Location(latitude=v, longitude=0), -90, -90.0001, "latitude"),
    ("longitude", lambda v: g.Location(latitude=0, longitude=v), 180, 180.0001, "longitude"),
    ("longitude low", lambda v: g.Location(latitude=0, longitude=v), -180, -180.0001, "longitude"),
    ("address country", lambda v: g.AddressRequest(body="b", country=v), "SG", "US", "country"),
    ("flow cta", lambda v: _flow(flow_cta=v), "c" * FLOW_CTA_MAX, "c" * (FLOW_CTA_MAX + 1), "flow_cta"),
    ("flow action", lambda v: _flow(flow_action=v), "data_exchange", "open", "flow_action"),
    ("flow mode", lambda v: _flow(mode=v), "draft", "live", "mode"),
    ("birthday", lambda v: g.Contacts(contacts=[{**CONTACT, "birthday": v}]), "2000-02-29", "1990-02-30", "birthday"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "at_limit", "past_limit", "field"),
    [case[1:] for case in LIMITS],
    ids=[case[0] for case in LIMITS],
)
def test_limit_holds_at_the_edge_and_fails_past_it(
    build: Callable[[Any], Any], at_limit: Any, past_limit: Any, field: str
) -> None:
    build(at_limit)
    with pytest.raises(ValidationError) as info:
        build(past_limit)
    assert field in str(info.value)


@pytest.mark.parametrize("media", [g.Image, g.Video, g.Document, g.Audio, g.Sticker])
def test_media_needs_exactly_one_of_id_and_link(media: type[Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of 'id' or 'link'"):
        media(id="MEDIA_ID", link="https://example.com/x")
    with pytest.raises(ValidationError, match="exactly one of 'id' or 'link'"):
        media()


@pytest.mark.parametrize("media", [g.Audio, g.Sticker])
def test_audio_and_sticker_take_no_caption(media: type[Any]) -> None:
    with pytest.raises(ValidationError, match="caption"):
        media(id="1", caption="nope")


def test_sticker_refuses_a_url_as_media_id() -> None:
    with pytest.raises(ValidationError, match="pass a URL as 'link'"):
        g.Sticker(id="https://example.com/sticker.webp")


@pytest.mark.parametrize("bad", ["ðŸ‘", "ðŸ˜€", ":thumbsup:", "ok"])
def test_reaction_refuses_text_and_mojibake(bad: str) -> None:
    with pytest.raises(ValidationError, match="emoji"):
        g.Reaction(message_id="m", emoji=bad)


@pytest.mark.parametrize("good", ["\N{THUMBS UP SIGN}", "❤️", "\N{COPYRIGHT SIGN}", "#️⃣", ""])
def test_reaction_accepts_real_emoji_and_empty_to_remove(good: str) -> None:
    assert g.Reaction(message_id="m", emoji=good).emoji == good


def test_buttons_must_be_unique() -> None:
    with pytest.raises(ValidationError, match="button title 'Same' is repeated"):
        _buttons_msg(buttons=[{"id": "1", "title": "Same"}, {"id": "2", "title": "Same"}])
    with pytest.raises(ValidationError, match="button id '1' is repeated"):
        _buttons_msg(buttons=[{"id": "1", "title": "A"}, {"id": "1", "title": "B"}])


def test_list_row_ids_unique_and_section_titles_needed_when_several() -> None:
    with pytest.raises(ValidationError, match="row id 'r0' is repeated"):
        _list(sections=[{"title": "A", "rows": _rows(1)}, {"title": "B", "rows": _rows(1)}])
    with pytest.raises(ValidationError, match="needs a title"):
        _list(sections=[{"rows": _rows(1)}, {"title": "B", "rows": [{"id": "z", "title": "z"}]}])


def test_media_header_on_buttons_and_no_caption_on_it() -> None:
    message = _buttons_msg(header=g.Image(link="https://a/b.png"))
    assert message.to_wire()["interactive"]["header"] == {
        "type": "image",
        "image": {"link": "https://a/b.png"},
    }
    with pytest.raises(ValidationError, match="media header takes no caption"):
        _buttons_msg(header=g.Image(link="https://a/b.png", caption="c"))


def test_list_header_is_text_only() -> None:
    with pytest.raises(ValidationError):
        _list(header=g.Image(link="https://a/b.png"))


def test_contact_name_needs_a_second_field() -> None:
    with pytest.raises(ValidationError, match="besides formatted_name"):
        g.Contacts(contacts=[{"name": {"formatted_name": "John"}}])


def test_flow_rules() -> None:
    with pytest.raises(ValidationError, match="exactly one of 'flow_id' or 'flow_name'"):
        g.FlowMessage(body="b", flow_cta="Go")
    with pytest.raises(ValidationError, match="exactly one of 'flow_id' or 'flow_name'"):
        g.FlowMessage(body="b", flow_cta="Go", flow_id="1", flow_name="n")
    with pytest.raises(ValidationError, match="navigate"):
        _flow(flow_action="data_exchange", screen="S")
    wire = _flow(flow_name="signup", flow_id=None, flow_action="data_exchange").to_wire()
    parameters = wire["interactive"]["action"]["parameters"]
    assert parameters == {
        "flow_message_version": "3",
        "flow_token": "unused",
        "flow_name": "signup",
        "flow_cta": "Go",
        "flow_action": "data_exchange",
    }


def test_models_are_immutable_and_refuse_unknown_fields() -> None:
    text = g.Text(body="hi")
    with pytest.raises(ValidationError):
        text.body = "changed"
    with pytest.raises(ValidationError, match="extra"):
        g.Text(body="hi", url="x")


def test_template_without_components_omits_them() -> None:
    assert g.Template(name="hello", language="en_US").to_wire() == {
        "type": "template",
        "template": {"name": "hello", "language": {"code": "en_US"}},
    }


@pytest.mark.parametrize(("name", "message", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_message_from_wire_inverts_to_wire(
    name: str, message: g.Message, expected: dict[str, Any]
) -> None:
    assert g.message_from_wire(expected) == message


def test_message_from_wire_refuses_reference_image_with_id_and_link() -> None:
    payload = {"type": "image", "image": {"id": "MEDIA_ID", "link": "https://example.com/i.jpg"}}
    with pytest.raises(ValidationError, match="exactly one"):
        g.message_from_wire(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "carousel", "carousel": {}},
        {"type": "interactive", "interactive": {"type": "carousel", "action": {}}},
    ],
)
def test_message_from_wire_refuses_unknown_types(payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unknown"):
        g.message_from_wire(payload)


@given(st.text(max_size=TEXT_BODY_MAX).filter(lambda body: bool(body) and "\x00" not in body))
def test_any_text_body_within_the_limit_round_trips_through_json(body: str) -> None:
    wire = g.Text(body=body).to_wire()
    assert json.loads(json.dumps(wire, ensure_ascii=False)) == {
        "type": "text",
        "text": {"body": body},
    }
