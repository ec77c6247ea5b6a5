"""Request bodies written by others, loaded once: Meta's 50 schema examples and the vendor
reference's curl bodies, with only their placeholders filled in (a phone number for `to`,
https:// for "http(s)://", a header type for "<HEADER_TYPE>").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .reference_examples import TO

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
META_SCHEMA = REFERENCE / "meta-business-messaging-api_v23.0.yaml"
VENDOR_REFERENCE = REFERENCE / "gupshup-v3-send-session-message.md"


def _fill(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, key) for v in value]
    if isinstance(value, str):
        if key == "to":
            return TO
        if "http(s)://" in value:
            return value.strip("<>").replace("http(s)://", "https://")
        if value == "<HEADER_TYPE>":
            return "text"
    return value


def meta_examples() -> dict[str, dict[str, Any]]:
    """Meta's request examples for `POST /{Phone-Number-ID}/messages`, by their title."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(META_SCHEMA.read_text(), Loader=loader)
    operation = document["paths"]["/{Version}/{Phone-Number-ID}/messages"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    return {title: _fill(example["value"]) for title, example in examples.items()}


def vendor_examples() -> dict[str, dict[str, Any]]:
    """The vendor reference's curl bodies (`-d '{...}'`), by their message type."""
    text = VENDOR_REFERENCE.read_text(encoding="utf-8")
    found: dict[str, dict[str, Any]] = {}
    for match in re.finditer(r"-d '(\{.*?\})'\s*\n", text, re.S):
        body = _fill(json.loads(match.group(1)))
        kind = body["type"]
        if kind == "interactive":
            kind = f"interactive/{body['interactive']['type']}"
        found[f"vendor {kind}"] = body
    return found
