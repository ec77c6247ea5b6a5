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


def _text(obj: Any, key: str, limit: int, *, where: str, required: bool = True) -> None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        _need(not required, f"{where}.{key} is required")
        return
    _need(isinstance(value, str), f"{where}.{key} must be a string")
    _need(0 < len(value) <= limit, f"{where}.{key} must be 1-{limit} characters")


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
            _need(isinstance(link, str) and link.startswith("https://"), f"{kind}.link: https")
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
    _need(bool(template.get("name")), "template.name is required")
    language = template.get("language")
    _need(isinstance(language, dict) and bool(language.get("code")), "template.language.code")


def _interactive(inter: Any) -> None:
    _need(isinstance(inter, dict), "interactive must be an object")
    kind = inter.get("type")
    body = inter.get("body")
    _need(isinstance(body, dict), "interactive.body is required")
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
            _text(row, "description", 72, where="row", required=False)
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
        _text(params, "flow_cta", 20, where="flow")
        flow_action = params.get("flow_action", "navigate")
        _need(flow_action in ("navigate", "data_exchange"), "flow_action: navigate|data_exchange")
        payload = params.get("flow_action_payload")
        _need(payload is None or flow_action == "navigate", "flow_action_payload: navigate only")
        _need(params.get("mode", "published") in ("draft", "published"), "mode: draft|published")
    else:
        raise PayloadError(f"interactive.type {kind!r} is not supported")


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
    "audio": _media("audio", caption=False),
    "sticker": _media("sticker", caption=False),
    "location": _location,
    "contacts": _contacts,
    "reaction": _reaction,
    "interactive": _interactive,
    "template": _template,
}
