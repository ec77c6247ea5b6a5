"""The mock's own checks of a v3 send body, written from NOTES.md, not from the SDK's models.

Kept deliberately independent (plain dicts, no pydantic) so the SDK and the mock check each
other: a model that emits something the API refuses fails here. `check_payload` returns the
first problem as a sentence, or None for a body the API would take.
"""

from __future__ import annotations

import re
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TO = re.compile(r"^[0-9]{7,15}$")
_ISO_4217 = re.compile(r"^[A-Z]{3}$")
_WEB = ("http://", "https://")


class PayloadError(Exception):
    """A body the real API would refuse with 400."""


def check_payload(body: Any) -> str | None:
    """Return why the API would refuse `body`, or None when it is acceptable."""
    try:
        _check(body)
    except PayloadError as problem:
        return str(problem)
    return None


def _need(condition: bool, problem: str) -> None:
    if not condition:
        raise PayloadError(problem)


def _text(
    obj: Any, key: str, limit: int, *, where: str, required: bool = True, empty: bool = False
) -> None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        _need(not required, f"{where}.{key} is required")
        return
    _need(isinstance(value, str), f"{where}.{key} must be a string")
    shortest = 0 if empty else 1
    _need(shortest <= len(value) <= limit, f"{where}.{key} must be {shortest}-{limit} characters")


def _only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = set(obj) - allowed
    _need(not extra, f"{where}: unknown field(s) {sorted(extra)}")


def _check(body: Any) -> None:
    _need(isinstance(body, dict), "body must be a JSON object")
    _need(body.get("messaging_product") == "whatsapp", "messaging_product must be 'whatsapp'")
    _need(
        body.get("recipient_type", "individual") == "individual",
        "recipient_type must be 'individual'",
    )
    _need(isinstance(body.get("to"), str) and bool(_TO.match(body["to"])), "to: 7-15 digits")
    kind = body.get("type")
    _need(isinstance(kind, str) and kind in _CHECKS, f"type {kind!r} is not supported")
    envelope = {"messaging_product", "recipient_type", "to", "type", kind, "context"}
    _only(body, envelope | {"biz_opaque_callback_data"}, "body")
    if "biz_opaque_callback_data" in body:
        _text(body, "biz_opaque_callback_data", 512, where="body")
    if "context" in body:
        context = body["context"]
        _need(
            isinstance(context, dict) and isinstance(context.get("message_id"), str),
            "context.message_id must be a string",
        )
    _need(kind in body, f"{kind} object is missing")
    _CHECKS[kind](body[kind])


def _media(kind: str, caption: bool, extra: tuple[str, ...] = ()) -> Any:
    def check(media: Any) -> None:
        _need(isinstance(media, dict), f"{kind} must be an object")
        allowed = {"id", "link"} | ({"caption"} if caption else set()) | set(extra)
        _only(media, allowed, kind)
        _need(("id" in media) != ("link" in media), f"{kind}: exactly one of id or link")
        if "link" in media:
            link = media["link"]
            _need(isinstance(link, str) and link.startswith(_WEB), f"{kind}.link: http(s) URL")
        if "voice" in media:
            _need(isinstance(media["voice"], bool), f"{kind}.voice must be a boolean")
        if caption:
            _text(media, "caption", 1024, where=kind, required=False)

    return check


def _text_message(text: Any) -> None:
    _need(isinstance(text, dict), "text must be an object")
    _only(text, {"body", "preview_url"}, "text")
    _text(text, "body", 4096, where="text")
    _need(isinstance(text.get("preview_url", False), bool), "text.preview_url must be a boolean")


def _location(loc: Any) -> None:
    _need(isinstance(loc, dict), "location must be an object")
    _only(loc, {"latitude", "longitude", "name", "address"}, "location")
    lat, lon = loc.get("latitude"), loc.get("longitude")
    _need(isinstance(lat, int | float) and -90 <= lat <= 90, "location.latitude: -90..90")
    _need(isinstance(lon, int | float) and -180 <= lon <= 180, "location.longitude: -180..180")


def _contacts(contacts: Any) -> None:
    _need(isinstance(contacts, list) and 1 <= len(contacts) <= 257, "contacts: 1-257 entries")
    for contact in contacts:
        _need(isinstance(contact, dict), "contacts[]: objects")
        name = contact.get("name")
        _need(isinstance(name, dict) and bool(name.get("formatted_name")), "name.formatted_name")
        others = ("first_name", "last_name", "middle_name", "suffix", "prefix")
        _need(any(name.get(k) for k in others), "contact name needs one more name field")
        birthday = contact.get("birthday")
        _need(birthday is None or bool(_DATE.match(str(birthday))), "birthday: YYYY-MM-DD")


def _reaction(reaction: Any) -> None:
    _need(isinstance(reaction, dict), "reaction must be an object")
    _only(reaction, {"message_id", "emoji"}, "reaction")
    _need(bool(reaction.get("message_id")), "reaction.message_id is required")
    _need(isinstance(reaction.get("emoji"), str), "reaction.emoji is required")


def _template(template: Any) -> None:
    _need(isinstance(template, dict), "template must be an object")
    _only(template, {"name", "language", "components"}, "template")
    _need(bool(template.get("name")), "template.name is required")
    language = template.get("language")
    _need(isinstance(language, dict) and bool(language.get("code")), "template.language.code")
    _only(language, {"code", "policy"}, "template.language")
    _need(language.get("policy", "deterministic") == "deterministic", "language.policy")
    components = template.get("components", [])
    _need(isinstance(components, list), "template.components must be a list")
    for component in components:
        _need(isinstance(component, dict), "template.components[]: objects")
        kind = component.get("type")
        params: Any = component.get("parameters")
        if kind in ("header", "body", "button"):
            _need(isinstance(params, list) and bool(params), f"{kind}: parameters required")
        if kind == "header":
            _need(len(params) == 1, "header: exactly one parameter")
            _template_parameter(params[0], ("text", "image", "video", "document", "location"), 60)
        elif kind == "body":
            for param in params:
                _template_parameter(param, ("text", "currency", "date_time"), 32768)
        elif kind == "button":
            _template_button(component)


def _template_parameter(param: Any, kinds: tuple[str, ...], text_max: int) -> None:
    _need(isinstance(param, dict) and param.get("type") in kinds, f"parameter type: {kinds}")
    kind = param["type"]
    if kind == "text":
        _text(param, "text", text_max, where="parameter")
    elif kind == "currency":
        currency = param.get("currency")
        _need(isinstance(currency, dict), "currency object required")
        _need(bool(_ISO_4217.match(str(currency.get("code")))), "currency.code: ISO 4217")
        amount = currency.get("amount_1000")
        _need(type(amount) is int, "currency.amount_1000 must be an integer")
        _text(currency, "fallback_value", 1024, where="currency")
    elif kind == "date_time":
        date_time = param.get("date_time")
        _need(isinstance(date_time, dict), "date_time object required")
        _text(date_time, "fallback_value", 1024, where="date_time")
    elif kind == "location":
        location = param.get("location")
        _need(isinstance(location, dict), "location object required")
        for axis, limit in (("latitude", 90), ("longitude", 180)):
            try:
                degrees = float(location.get(axis))
            except (TypeError, ValueError):
                raise PayloadError(f"location.{axis} must be a number") from None
            _need(-limit <= degrees <= limit, f"location.{axis}: -{limit}..{limit}")
    else:
        _media(kind, caption=False, extra=("filename",))(param.get(kind))


_BUTTON_PARAMETER = {
    "quick_reply": "payload",
    "url": "text",
    "copy_code": "coupon_code",
    "flow": "action",
    "catalog": "action",
}


def _template_button(component: dict[str, Any]) -> None:
    index = component.get("index")
    _need(str(index) in "0123456789" and len(str(index)) == 1, "button.index: 0-9")
    sub_type = str(component.get("sub_type")).lower()
    wanted = _BUTTON_PARAMETER.get(sub_type)
    if wanted is None:
        return  # a button kind this mock does not know: the API decides
    params = component["parameters"]
    _need(len(params) == 1, "button: exactly one parameter")
    param = params[0]
    _need(isinstance(param, dict) and param.get("type") == wanted, f"{sub_type}: {wanted}")
    if wanted == "coupon_code":
        _text(param, "coupon_code", 15, where="button")
    elif wanted == "action":
        _need(isinstance(param.get("action"), dict), "button.action must be an object")
    else:
        _text(param, wanted, 32768, where="button")


def _interactive(inter: Any) -> None:
    _need(isinstance(inter, dict), "interactive must be an object")
    kind = inter.get("type")
    body = inter.get("body")
    _need(isinstance(body, dict) or kind == "product", "interactive.body is required")
    footer = inter.get("footer")
    if footer is not None:
        _text(footer, "text", 60, where="interactive.footer")
    header = inter.get("header")
    action = inter.get("action")
    _need(isinstance(action, dict), "interactive.action is required")
    if kind == "button":
        _text(body, "text", 1024, where="interactive.body")
        if header is not None:
            _header(header, media=True)
        buttons = action.get("buttons")
        _need(isinstance(buttons, list) and 1 <= len(buttons) <= 3, "buttons: 1-3")
        ids, titles = set(), set()
        for button in buttons:
            _need(button.get("type") == "reply", "button.type must be 'reply'")
            reply = button.get("reply") or {}
            _text(reply, "id", 256, where="button.reply")
            _text(reply, "title", 20, where="button.reply")
            _need(reply["id"] not in ids and reply["title"] not in titles, "buttons: unique")
            ids.add(reply["id"])
            titles.add(reply["title"])
    elif kind == "list":
        _text(body, "text", 4096, where="interactive.body")
        if header is not None:
            _header(header, media=False)
        _text(action, "button", 20, where="action")
        sections = action.get("sections")
        _need(isinstance(sections, list) and 1 <= len(sections) <= 10, "sections: 1-10")
        rows = [row for section in sections for row in section.get("rows") or []]
        _need(1 <= len(rows) <= 10, "list: 1-10 rows in total")
        _need(len({row.get("id") for row in rows}) == len(rows), "list: row ids unique")
        for section in sections:
            _text(section, "title", 24, where="section", required=len(sections) > 1)
            _need(bool(section.get("rows")), "section.rows must not be empty")
        for row in rows:
            _text(row, "id", 200, where="row")
            _text(row, "title", 24, where="row")
            _text(row, "description", 72, where="row", required=False, empty=True)
    elif kind == "address_message":
        _need(action.get("name") == "address_message", "action.name must be 'address_message'")
        country = (action.get("parameters") or {}).get("country")
        _need(country in ("IN", "SG"), "address_message: country must be IN or SG")
    elif kind == "flow":
        _text(body, "text", 1024, where="interactive.body")
        if header is not None:
            _header(header, media=False)
        _need(action.get("name") == "flow", "action.name must be 'flow'")
        params = action.get("parameters")
        _need(isinstance(params, dict), "flow parameters are required")
        _need(params.get("flow_message_version") == "3", "flow_message_version must be '3'")
        _need(("flow_id" in params) != ("flow_name" in params), "flow: one of flow_id/flow_name")
        _text(params, "flow_cta", 30, where="flow")
        flow_action = params.get("flow_action", "navigate")
        _need(flow_action in ("navigate", "data_exchange"), "flow_action: navigate|data_exchange")
        payload = params.get("flow_action_payload")
        _need(payload is None or flow_action == "navigate", "flow_action_payload: navigate only")
        _need(params.get("mode", "published") in ("draft", "published"), "mode: draft|published")
    elif kind == "cta_url":
        _text(body, "text", 1024, where="interactive.body")
        if header is not None:
            _header(header, media=True)
        _need(action.get("name") == "cta_url", "action.name must be 'cta_url'")
        params = action.get("parameters")
        _need(isinstance(params, dict), "cta_url parameters are required")
        _only(params, {"display_text", "url"}, "cta_url parameters")
        _text(params, "display_text", 20, where="cta_url")
        url = params.get("url")
        _need(isinstance(url, str) and url.startswith(_WEB), "cta_url.url: an http(s) URL")
    elif kind == "location_request_message":
        _need(header is None and footer is None, "location_request_message: body only")
        _text(body, "text", 1024, where="interactive.body")
        _need(action == {"name": "send_location"}, "action must be {'name': 'send_location'}")
    elif kind in ("product", "product_list", "catalog_message"):
        _commerce(kind, header, body, action)
    else:
        raise PayloadError(f"interactive.type {kind!r} is not supported")


def _commerce(kind: str, header: Any, body: Any, action: dict[str, Any]) -> None:
    if kind == "product":
        _need(header is None, "product: no header")
        if body is not None:
            _text(body, "text", 1024, where="interactive.body")
        _only(action, {"catalog_id", "product_retailer_id"}, "product action")
        _text(action, "catalog_id", 1000, where="action")
        _text(action, "product_retailer_id", 1000, where="action")
    elif kind == "product_list":
        _need(
            isinstance(header, dict) and header.get("type") == "text", "product_list: text header"
        )
        _header(header, media=False)
        _text(body, "text", 1024, where="interactive.body")
        _only(action, {"catalog_id", "sections"}, "product_list action")
        _text(action, "catalog_id", 1000, where="action")
        sections: Any = action.get("sections")
        _need(isinstance(sections, list) and 1 <= len(sections) <= 10, "sections: 1-10")
        items: list[Any] = []
        for section in sections:
            _need(isinstance(section, dict), "sections[]: objects")
            _text(section, "title", 24, where="section", required=len(sections) > 1)
            products: Any = section.get("product_items")
            _need(isinstance(products, list) and bool(products), "section.product_items: 1+")
            items += [item.get("product_retailer_id") for item in products]
        _need(len(items) <= 30, "product_list: at most 30 products")
        _need(all(isinstance(i, str) and i for i in items), "product_retailer_id is required")
    else:
        _text(body, "text", 1024, where="interactive.body")
        _need(action.get("name") == "catalog_message", "action.name must be 'catalog_message'")
        params = action.get("parameters", {})
        _need(isinstance(params, dict), "catalog_message parameters must be an object")
        _text(params, "thumbnail_product_retailer_id", 1000, where="catalog", required=False)


def _header(header: Any, *, media: bool) -> None:
    _need(isinstance(header, dict), "header must be an object")
    kind = header.get("type")
    if kind == "text":
        _text(header, "text", 60, where="header")
        return
    _need(media and kind in ("image", "video", "document"), f"header type {kind!r} not allowed")
    _media(str(kind), caption=False, extra=("filename",))(header.get(kind))


_CHECKS: dict[str, Any] = {
    "text": _text_message,
    "image": _media("image", caption=True),
    "video": _media("video", caption=True),
    "document": _media("document", caption=True, extra=("filename",)),
    "audio": _media("audio", caption=False, extra=("voice",)),
    "sticker": _media("sticker", caption=False),
    "location": _location,
    "contacts": _contacts,
    "reaction": _reaction,
    "interactive": _interactive,
    "template": _template,
}
