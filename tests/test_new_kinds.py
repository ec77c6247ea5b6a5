"""Issue 12 section 2: each new kind on the wire, field for field against an example from
Meta's schema or guides, and the mock's own validation taking it (and refusing its limits)."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

import gupshup_async as g
from gupshup_async._client import encode_body, encode_message
from gupshup_async.mock._validation import check_payload

from .conftest import SEND_URL, SUCCESS
from .meta_examples import META_SCHEMA, meta_examples
from .reference_examples import META_DOC_EXAMPLES, TO
from .test_meta_schema import validator  # noqa: F401  (the fixture)

if not META_SCHEMA.exists():
    pytest.skip(f"Meta's schema is not beside the project ({META_SCHEMA})", allow_module_level=True)

META = meta_examples()
EXAMPLE = {**META, **META_DOC_EXAMPLES}

#: (example title, the model built with the SDK's typed API)
NEW_KINDS: list[tuple[str, g.Message]] = [
    (
        "cta_url",
        g.UrlButton(
            header=g.Image(link="https://example.com/header.png"),
            body="Tap the button below to see available dates.",
            display_text="See Dates",
            url="https://www.luckyshrub.com?clickID=kqDGWd24Q5TRwoEQTICY7W1JKoXvaZOXWAS7h1P76s0R7Paec4",
            footer="Dates subject to change.",
        ),
    ),
    (
        "location_request_message",
        g.LocationRequest(
            body="Let's start with your pickup. You can either manually *enter an address* or "
            "*share your current location*."
        ),
    ),
    ("voice", g.Audio(id="1013859600285441", voice=True)),
    (
        "Send Single Product Message",
        g.ProductMessage(
            catalog_id="367025965434465",
            product_retailer_id="<ID_TEST_ITEM_1>",
            body="<OPTIONAL_BODY_TEXT>",
            footer="<OPTIONAL_FOOTER_TEXT>",
        ),
    ),
    (
        "Send Multi-Product Message",
        g.ProductListMessage(
            header="<YOUR_TEXT_HEADER_CONTENT>",
            body="<YOUR_TEXT_BODY_CONTENT>",
            footer="<YOUR_TEXT_FOOTER_CONTENT>",
            catalog_id="146265584024623",
            sections=[
                g.ProductSection(
                    title="<SECTION1_TITLE>",
                    product_items=[
                        g.ProductItem(product_retailer_id="<YOUR_PRODUCT1_SKU_IN_CATALOG>"),
                        g.ProductItem(product_retailer_id="<YOUR_SECOND_PRODUCT1_SKU_IN_CATALOG>"),
                    ],
                ),
                {
                    "title": "<SECTION2_TITLE>",
                    "product_items": [
                        {"product_retailer_id": "<YOUR_PRODUCT2_SKU_IN_CATALOG>"},
                        {"product_retailer_id": "<YOUR_SECOND_PRODUCT2_SKU_IN_CATALOG>"},
                    ],
                },
            ],
        ),
    ),
    (
        "Send Catalog Message",
        g.CatalogMessage(
            body="Hello! Thanks for your interest. Ordering is easy. Just visit our catalog and "
            "add items to purchase.",
            footer="Best grocery deals on WhatsApp!",
            thumbnail_product_retailer_id="2lc20305pt",
        ),
    ),
    (
        "Send Message Template Interactive",
        g.Template(
            name="template-name",
            language="language-and-locale-code",
            components=[
                g.TemplateHeader(
                    parameters=[g.ImageParameter(image=g.Image(link="https://the-image-url"))]
                ),
                g.TemplateBody(
                    parameters=[
                        g.TextParameter(text="text-string"),
                        g.CurrencyParameter(
                            currency=g.Currency(
                                fallback_value="$100.99", code="USD", amount_1000=100990
                            )
                        ),
                        g.DateTimeParameter(
                            date_time=g.DateTime(
                                fallback_value="February 25, 1977",
                                calendar="GREGORIAN",
                                day_of_month=25,
                                day_of_week=5,
                                hour=15,
                                minute=33,
                                month=2,
                                year=1977,
                            )
                        ),
                    ]
                ),
                g.TemplateButton(
                    sub_type="quick_reply",
                    index="0",
                    parameters=[g.PayloadParameter(payload="aGlzIHRoaXMgaXMgY29v")],
                ),
                g.TemplateButton(
                    sub_type="quick_reply",
                    index="1",
                    parameters=[g.PayloadParameter(payload="9rwnB8RbYmPF5t2Mn09x4h")],
                ),
            ],
        ),
    ),
    (
        "Send Flow Template Message",
        g.Template(
            name="<TEMPLATE_NAME>",
            language="en_US",
            components=[
                g.TemplateButton(
                    sub_type="flow",
                    index="0",
                    parameters=[
                        g.ActionParameter(
                            action={
                                "flow_token": "<FLOW_TOKEN>",
                                "flow_action_data": {"<CUSTOM_KEY>": "<CUSTOM_VALUE>"},
                            }
                        )
                    ],
                )
            ],
        ),
    ),
    (
        "Send Catalog Template Message",
        g.Template(
            name="intro_catalog_offer",
            language="en_US",
            components=[
                g.TemplateBody(parameters=[g.TextParameter(text=t) for t in ("100", "400", "3")]),
                g.TemplateButton(
                    sub_type="CATALOG",
                    index=0,
                    parameters=[
                        g.ActionParameter(action={"thumbnail_product_retailer_id": "2lc20305pt"})
                    ],
                ),
            ],
        ),
    ),
    (
        "template_copy_code",
        g.Template(
            name="coupon_code_fall2023_25off",
            language="en_US",
            components=[
                g.TemplateBody(
                    parameters=[g.TextParameter(text="25OFF"), g.TextParameter(text="25%")]
                ),
                g.TemplateButton(
                    sub_type="COPY_CODE",
                    index=1,
                    parameters=[g.CouponCodeParameter(coupon_code="25OFF")],
                ),
            ],
        ),
    ),
    (
        "template_url_button",
        g.Template(
            name="order_confirmation",
            language="en_US",
            components=[
                g.TemplateHeader(
                    parameters=[
                        g.LocationParameter(
                            location=g.TemplateLocation(
                                latitude="37.483307",
                                longitude="122.148981",
                                name="Pablo Morales",
                                address="1 Hacker Way, Menlo Park, CA 94025",
                            )
                        )
                    ]
                ),
                g.TemplateButton(
                    sub_type="url",
                    index="0",
                    parameters=[g.TextParameter(text="order/860198-230332")],
                ),
            ],
        ),
    ),
]


def _expected(title: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", **EXAMPLE[title]}


@pytest.mark.parametrize(("title", "message"), NEW_KINDS, ids=[k[0] for k in NEW_KINDS])
async def test_a_new_kind_is_on_the_wire_as_in_metas_example(
    router: respx.Router, client: g.AsyncGupshupClient, title: str, message: g.Message
) -> None:
    route = router.post(SEND_URL).respond(200, json=SUCCESS)
    await client.send(TO, message)
    assert json.loads(route.calls.last.request.content) == _expected(title)


@pytest.mark.parametrize(("title", "message"), NEW_KINDS, ids=[k[0] for k in NEW_KINDS])
def test_a_new_kind_reads_back_from_the_wire(title: str, message: g.Message) -> None:
    assert g.request_from_wire(EXAMPLE[title])[1].to_wire() == message.to_wire()


@pytest.mark.parametrize("title", [k[0] for k in NEW_KINDS])
def test_the_mock_accepts_each_new_kind(title: str) -> None:
    assert check_payload(_expected(title)) is None


def _body(message: g.Message) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(encode_body(TO, encode_message(message)))
    return decoded


def test_the_mock_accepts_every_body_the_sdk_reads_back() -> None:
    from .test_meta_examples import BODIES, REFUSED

    refused = {
        name: check_payload(_body(g.request_from_wire(body)[1]))
        for name, body in BODIES.items()
        if name not in REFUSED
    }
    assert {name: why for name, why in refused.items() if why is not None} == {}


def _edit(title: str, path: list[Any], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(_expected(title))
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


#: (what, a body past a limit, the words of the mock's refusal)
MOCK_REFUSALS = [
    ("cta label", _edit("cta_url", ["interactive", "action", "parameters", "display_text"], "x" * 21), "display_text"),
    ("cta url", _edit("cta_url", ["interactive", "action", "parameters", "url"], "ftp://x"), "cta_url.url"),
    ("location request header", _edit("location_request_message", ["interactive", "header"], {"type": "text", "text": "h"}), "body only"),
    ("location request action", _edit("location_request_message", ["interactive", "action", "name"], "send"), "send_location"),
    ("voice not bool", _edit("voice", ["audio", "voice"], "yes"), "voice"),
    ("product header", _edit("Send Single Product Message", ["interactive", "header"], {"type": "text", "text": "h"}), "no header"),
    ("product list items", _edit("Send Multi-Product Message", ["interactive", "action", "sections", 0, "product_items"], [{"product_retailer_id": f"p{i}"} for i in range(29)]), "at most 30"),
    ("catalog name", _edit("Send Catalog Message", ["interactive", "action", "name"], "catalog"), "catalog_message"),
    ("coupon code", _edit("template_copy_code", ["template", "components", 1, "parameters", 0, "coupon_code"], "x" * 16), "coupon_code"),
    ("currency code", _edit("Send Message Template Interactive", ["template", "components", 1, "parameters", 1, "currency", "code"], "usd"), "ISO 4217"),
    ("button index", _edit("template_url_button", ["template", "components", 1, "index"], "10"), "index"),
    ("quick reply parameter", _edit("Send Message Template Interactive", ["template", "components", 2, "parameters", 0], {"type": "text", "text": "x"}), "quick_reply"),
    ("header parameters", _edit("template_url_button", ["template", "components", 0, "parameters"], []), "parameters required"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "words"), [m[1:] for m in MOCK_REFUSALS], ids=[m[0] for m in MOCK_REFUSALS]
)
def test_the_mock_refuses_a_new_kind_past_its_limits(body: dict[str, Any], words: str) -> None:  # fmt: skip
    problem = check_payload(body)
    assert problem is not None
    assert words in problem


#: (limit, build(value) -> model, at the limit, past it, field in the error)
LIMITS: list[tuple[str, Any, Any, Any, str]] = [
    ("cta label", lambda v: g.UrlButton(body="b", display_text=v, url="https://x"), "x" * 20, "x" * 21, "display_text"),
    ("cta url", lambda v: g.UrlButton(body="b", display_text="d", url=v), "http://x", "ftp://x", "url"),
    ("cta header caption", lambda v: g.UrlButton(body="b", display_text="d", url="https://x", header=g.Video(id="1", caption=v)), None, "c", "caption"),
    ("location request body", lambda v: g.LocationRequest(body=v), "b" * 1024, "b" * 1025, "body"),
    ("voice is a bool", lambda v: g.Audio(id="1", voice=v), True, "true", "voice"),
    ("product list items", lambda v: g.ProductListMessage(header="h", body="b", catalog_id="c", sections=[{"product_items": [{"product_retailer_id": f"p{i}"} for i in range(v)]}]), 30, 31, "product_items"),
    ("product list total", lambda v: g.ProductListMessage(header="h", body="b", catalog_id="c", sections=[{"title": "A", "product_items": [{"product_retailer_id": f"a{i}"} for i in range(20)]}, {"title": "B", "product_items": [{"product_retailer_id": f"b{i}"} for i in range(v - 20)]}]), 30, 31, "at most 30 products"),
    ("product list unique", lambda v: g.ProductListMessage(header="h", body="b", catalog_id="c", sections=[{"product_items": [{"product_retailer_id": "a"}, {"product_retailer_id": v}]}]), "b", "a", "repeated"),
    ("product list titles", lambda v: g.ProductListMessage(header="h", body="b", catalog_id="c", sections=[{"title": v, "product_items": [{"product_retailer_id": "a"}]}, {"title": "B", "product_items": [{"product_retailer_id": "b"}]}]), "A", None, "needs a title"),
    ("header text parameter", lambda v: g.TemplateHeader(parameters=[g.TextParameter(text=v)]), "h" * 60, "h" * 61, "at most 60"),
    ("one header parameter", lambda v: g.TemplateHeader(parameters=[g.TextParameter(text="h")] * v), 1, 2, "parameters"),
    ("body text parameter", lambda v: g.TemplateBody(parameters=[g.TextParameter(text=v)]), "b" * 32768, "b" * 32769, "at most 32768"),
    ("coupon code", lambda v: g.CouponCodeParameter(coupon_code=v), "c" * 15, "c" * 16, "coupon_code"),
    ("currency code", lambda v: g.Currency(fallback_value="$1", code=v, amount_1000=1000), "USD", "usd", "code"),
    ("amount is an integer", lambda v: g.Currency(fallback_value="$1", code="USD", amount_1000=v), 1000, 1000.5, "amount_1000"),
    ("button index", lambda v: g.TemplateButton(sub_type="url", index=v, parameters=[g.TextParameter(text="x")]), 9, 10, "index"),
    ("button parameter kind", lambda v: g.TemplateButton(sub_type=v, index=0, parameters=[g.PayloadParameter(payload="p")]), "QUICK_REPLY", "url", "takes a 'text' parameter"),
    ("template buttons", lambda v: g.Template(name="t", language="en", components=[g.TemplateButton(sub_type="quick_reply", index=str(i), parameters=[g.PayloadParameter(payload="p")]) for i in range(v)]), 10, 11, "index"),
    ("one body", lambda v: g.Template(name="t", language="en", components=[{"type": "body", "parameters": [{"type": "text", "text": "x"}]}] * v), 1, 2, "at most one body"),
    ("unique button index", lambda v: g.Template(name="t", language="en", components=[g.TemplateButton(sub_type="url", index=i, parameters=[g.TextParameter(text="x")]) for i in (0, v)]), 1, 0, "button index '0' is repeated"),
    ("raw dict checked as typed", lambda v: g.Template(name="t", language="en", components=[{"type": "button", "sub_type": "copy_code", "index": 0, "parameters": [{"type": "coupon_code", "coupon_code": v}]}]), "c" * 15, "c" * 16, "coupon_code"),
    ("template location", lambda v: g.TemplateLocation(latitude=v, longitude=0), "-90", "90.5", "latitude"),
    ("language policy", lambda v: g.Template(name="t", language="en", language_policy=v), "deterministic", "fallback", "language_policy"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "at_limit", "past_limit", "field"),
    [c[1:] for c in LIMITS],
    ids=[c[0] for c in LIMITS],
)
def test_a_new_kind_holds_its_limit_in_the_callers_code(
    build: Any, at_limit: Any, past_limit: Any, field: str
) -> None:
    if at_limit is not None:
        build(at_limit)
    with pytest.raises(ValidationError) as info:
        build(past_limit)
    assert field in str(info.value)


def test_a_raw_button_of_an_unmodelled_kind_is_kept_as_written() -> None:
    button = {"type": "button", "sub_type": "mpm", "index": 0,
              "parameters": [{"type": "action", "action": {"thumbnail_product_retailer_id": "x"}}]}  # fmt: skip
    template = g.Template(name="t", language="en", components=[button])
    assert template.to_wire()["template"]["components"] == [button]


#: The new kinds Meta's OpenAPI schema describes (cta_url, location requests and voice notes
#: are only in its guides; its template button `index` pattern refuses "0", so buttons are out).
IN_METAS_SCHEMA = ["Send Single Product Message", "Send Multi-Product Message",
                   "Send Catalog Message", "Send Message Template Media"]  # fmt: skip


@pytest.mark.parametrize("title", IN_METAS_SCHEMA)
def test_a_new_kind_the_schema_describes_validates_against_it(
    validator: Any,  # noqa: F811  (the fixture imported above)
    title: str,
) -> None:
    message = g.request_from_wire(META[title])[1]
    errors = [error.message[:200] for error in validator.iter_errors(_body(message))]
    assert errors == []


async def test_the_mock_refuses_a_bare_nan_as_the_api_would() -> None:
    from gupshup_async.mock import MockGupshupApp, mock_transport

    app = MockGupshupApp(token="t")
    body = (b'{"messaging_product":"whatsapp","recipient_type":"individual","to":"919876543210",'
            b'"type":"template","template":{"name":"t","language":{"code":"en"},'
            b'"components":[{"type":"x","v":NaN}]}}')  # fmt: skip
    async with httpx.AsyncClient(transport=mock_transport(app)) as http:
        response = await http.post(
            "http://mock/partner/app/a/v3/message", content=body, headers={"Authorization": "t"}
        )
    assert response.status_code == 400
    assert app.recorder.total_accepted == 0
