"""Issue 12 section 1 and issue 9 item 9: a model keeps every field it reads or refuses it,
follows Meta's current schema where it was stricter, and refuses what JSON cannot carry."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

import gupshup_async as g
from gupshup_async._client import encode_message

from .reference_examples import TO


def _flow_body(**parameters: Any) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {
            "type": "flow",
            "body": {"text": "b"},
            "action": {
                "name": "flow",
                "parameters": {
                    "flow_message_version": "3",
                    "flow_token": "t",
                    "flow_id": "1",
                    "flow_cta": "Go",
                    "flow_action": "navigate",
                    **parameters,
                },
            },
        },
    }


def _buttons_body(button: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "b"}, "action": {"buttons": [button]}},
    }


# ---- 1a. nothing dropped or rewritten -------------------------------------------------------


def test_template_language_policy_is_kept() -> None:
    body = {"type": "template",
            "template": {"name": "t", "language": {"code": "en_US", "policy": "deterministic"}}}  # fmt: skip
    assert g.message_from_wire(body).to_wire() == body


def test_template_empty_components_are_kept() -> None:
    body = {"type": "template",
            "template": {"name": "t", "language": {"code": "en"}, "components": []}}  # fmt: skip
    assert g.message_from_wire(body).to_wire() == body


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("recipient_type", "group", "recipient_type 'group' is not supported"),
        ("messaging_product", "sms", "messaging_product must be 'whatsapp'"),
        ("to", "12", "7-15 digits"),
        ("to", 919876543210, "to must be a string"),
    ],
)
def test_the_envelope_beside_a_message_is_checked_not_rewritten(
    field: str, value: Any, words: str
) -> None:
    body = {"type": "text", "text": {"body": "hi"}, field: value}
    with pytest.raises(ValueError, match=words):
        g.message_from_wire(body)


def test_the_envelope_beside_a_message_is_accepted_when_right() -> None:
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO,
            "type": "text", "text": {"body": "hi"}}  # fmt: skip
    assert g.message_from_wire(body) == g.Text(body="hi")


def test_a_button_type_other_than_reply_is_refused() -> None:
    body = _buttons_body({"type": "url", "reply": {"id": "a", "title": "A"}})
    with pytest.raises(ValueError, match="button type 'url' is not supported"):
        g.message_from_wire(body)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_flow_body(flow_message_version="2"), "flow_message_version must be '3'"),
        (_flow_body(flow_action_payload={"screen": "S", "extra": 1}), "extra"),
        (_buttons_body({"type": "reply", "reply": {"id": "a", "title": "A"}, "x": 1}), "x"),
        ({"type": "interactive", "interactive": {"type": "list", "body": {"text": "b", "y": 1},
          "action": {"button": "B", "sections": [{"rows": [{"id": "1", "title": "t"}]}]}}}, "y"),
        ({"type": "interactive", "interactive": {"type": "button", "body": {"text": "b"},
          "header": {"type": "text", "text": "h", "sub_text": "s"},
          "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}}},
         "sub_text"),
        ({"type": "interactive", "interactive": {"type": "address_message", "body": {"text": "b"},
          "action": {"name": "other", "parameters": {"country": "IN"}}}}, "'address_message'"),
        ({"type": "interactive", "interactive": {"type": "address_message", "body": {"text": "b"},
          "action": {"name": "address_message", "parameters": {}}}}, "missing 'country'"),
        ({"type": "template", "template": {"name": "t", "language": "en"}}, "language"),
        ({"type": "location", "location": {"latitude": "37.4", "longitude": 1}}, "latitude"),
        ({"type": "text", "text": {"body": "hi", "preview_url": "true"}}, "preview_url"),
    ],
)  # fmt: skip
def test_a_field_the_model_would_not_send_back_is_refused(body: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        g.message_from_wire(body)


# ---- 1b. Meta's current schema, and deliberate strictness as an option ----------------------


def test_flow_cta_takes_30_characters_as_metas_schema_does() -> None:
    assert g.FlowMessage(body="b", flow_cta="c" * 30, flow_id="1").flow_cta == "c" * 30
    with pytest.raises(ValidationError, match="flow_cta"):
        g.FlowMessage(body="b", flow_cta="c" * 31, flow_id="1")


@pytest.mark.parametrize("media", [g.Image, g.Video, g.Document, g.Audio, g.Sticker])
def test_http_links_are_sent_as_meta_fetches_them(media: type[Any]) -> None:
    link = "http://example.com/file"
    assert media(link=link).to_wire() == {"type": media.wire_type, media.wire_type: {"link": link}}


def test_https_only_is_an_option_with_a_clear_message_and_is_not_sent() -> None:
    with pytest.raises(ValidationError, match=r"https_only=True.*https_only=False to allow it"):
        g.Image(link="http://example.com/a.png", https_only=True)
    image = g.Image(link="https://example.com/a.png", https_only=True)
    assert image.to_wire() == {"type": "image", "image": {"link": "https://example.com/a.png"}}


def test_the_other_deliberate_strictness_can_be_switched_off() -> None:
    sticker = g.Sticker(id="https://example.com/s.webp", allow_url_id=True)
    assert sticker.to_wire() == {"type": "sticker", "sticker": {"id": "https://example.com/s.webp"}}
    reaction = g.Reaction(message_id="m", emoji="ok", allow_text_emoji=True)
    assert reaction.to_wire() == {
        "type": "reaction",
        "reaction": {"message_id": "m", "emoji": "ok"},
    }


def test_an_empty_list_row_description_is_accepted() -> None:
    message = g.ListMessage(body="b", button="Open",
                            sections=[{"rows": [{"id": "1", "title": "t", "description": ""}]}])  # fmt: skip
    rows = message.to_wire()["interactive"]["action"]["sections"][0]["rows"]
    assert rows == [{"id": "1", "title": "t", "description": ""}]


# ---- 1c. whole bodies and the envelope ------------------------------------------------------


def test_message_from_wire_refuses_context_and_points_to_request_from_wire() -> None:
    body = {"type": "text", "text": {"body": "hi"}, "context": {"message_id": "wamid.1"}}
    with pytest.raises(ValueError, match="request_from_wire"):
        g.message_from_wire(body)


def test_request_from_wire_gives_to_message_and_reply_to() -> None:
    body = {"messaging_product": "whatsapp", "to": "+91 98765 43210", "type": "text",
            "text": {"body": "hi"}, "context": {"message_id": "wamid.1"}}  # fmt: skip
    assert g.request_from_wire(body) == ("+91 98765 43210", g.Text(body="hi"), "wamid.1")
    del body["context"]
    assert g.request_from_wire(body) == ("+91 98765 43210", g.Text(body="hi"), None)


@pytest.mark.parametrize(
    ("context", "words"),
    [({"message_id": ""}, "context.message_id"), ({"message_id": "m", "x": 1}, "x")],
)
def test_request_from_wire_checks_the_context(context: dict[str, Any], words: str) -> None:
    body = {"to": TO, "type": "text", "text": {"body": "hi"}, "context": context}
    with pytest.raises(ValueError, match=words):
        g.request_from_wire(body)


def test_a_text_body_without_type_says_missing_type() -> None:
    with pytest.raises(ValueError, match="missing 'type'"):
        g.message_from_wire({"text": {"body": "hi"}})


# ---- issue 9 item 9: what JSON cannot carry -------------------------------------------------


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (math.nan, r"components\[0\]\.parameters\[0\]\.text: nan is not a JSON number"),
        (math.inf, r"components\[0\]\.parameters\[0\]\.text: inf is not a JSON number"),
        ({"x"}, r"components\[0\]\.parameters\[0\]\.text: a set is not JSON"),
        (b"x", r"components\[0\]\.parameters\[0\]\.text: a bytes is not JSON"),
        (_deep(5000), r"components\[0\]\.parameters\[0\]\.text\.a\.a.*nested more than 32"),
        ("\ud800", r"components\[0\]\.parameters\[0\]\.text: text with a lone surrogate"),
    ],
    ids=["nan", "inf", "set", "bytes", "deep", "surrogate"],
)
def test_template_components_json_cannot_carry_are_a_value_error_naming_the_field(
    value: Any, words: str
) -> None:
    component = {"type": "x_custom", "parameters": [{"type": "text", "text": value}]}
    with pytest.raises(ValueError, match=words):
        g.Template(name="t", language="en", components=[component])


def test_typed_template_parameters_refuse_nan_too() -> None:
    with pytest.raises(ValueError, match="latitude"):
        g.TemplateLocation(latitude=math.nan, longitude=0)
    with pytest.raises(ValueError, match="amount_1000"):
        g.Currency(fallback_value="$1", code="USD", amount_1000=math.inf)


def test_a_template_that_validates_encodes_to_strict_json() -> None:
    component = {"type": "body", "parameters": [{"type": "text", "text": "1.5"}]}
    fragment = encode_message(g.Template(name="t", language="en", components=[component]))
    json.loads("{" + fragment + "}", parse_constant=lambda c: pytest.fail(f"bare {c}"))


def test_text_with_nul_is_a_value_error_naming_the_body() -> None:
    with pytest.raises(ValidationError, match=r"body\n.*NUL"):
        g.Text(body="a\x00b")


@pytest.mark.parametrize(
    "build",
    [
        lambda v: g.FlowMessage(body="b", flow_cta="Go", flow_id="1", screen="S", data={"x": v}),
        lambda v: g.AddressRequest(body="b", values={"x": v}),
    ],
    ids=["flow data", "address values"],
)
@pytest.mark.parametrize("value", [math.nan, {"a"}, b"x"], ids=["nan", "set", "bytes"])
def test_free_form_json_fields_refuse_what_json_cannot_carry(build: Any, value: Any) -> None:
    with pytest.raises(ValueError, match=r"\.x: "):
        build(value)
