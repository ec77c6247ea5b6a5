"""Every request body written by others loads and goes back on the wire exactly as written,
or is refused with a `ValueError` that says why: never dropped, never rewritten (issue 12).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import gupshup_async as g
from gupshup_async._client import encode_body, encode_message

from .meta_examples import META_SCHEMA, VENDOR_REFERENCE, meta_examples, vendor_examples
from .reference_examples import META_DOC_EXAMPLES

if not META_SCHEMA.exists() or not VENDOR_REFERENCE.exists():
    pytest.skip(f"the reference files are not beside the project ({META_SCHEMA.parent})",
                allow_module_level=True)  # fmt: skip

#: The bodies the SDK refuses, and the words of the refusal.
REFUSED = {
    # Meta's own examples without a "type": the API needs it.
    "Send Text Message with Preview URL": "missing 'type'",
    "Send Reply to List Message": "missing 'type'",
    # A read receipt, not a message: `client.mark_read()` sends it (tests/test_partner.py).
    "Send typing indicator and read receipt": "missing 'to'",
    # Payments (India, Singapore, Brazil) are not modelled yet.
    "Send Order Details Message": "unknown interactive type 'order_details'",
    "Send Order Status Message": "unknown interactive type 'order_status'",
    # A quick-reply parameter must be a string payload; Meta's example sends booleans.
    "Send Sample Issue Resolution Template": "valid string",
    # The vendor reference's errors (README, "Where the vendor's reference is wrong").
    "vendor image": "exactly one of 'id' or 'link'",
    "vendor video": "exactly one of 'id' or 'link'",
    "vendor reaction": "emoji must be the emoji character itself",
}

BODIES: dict[str, dict[str, Any]] = {**meta_examples(), **vendor_examples(), **META_DOC_EXAMPLES}


def _resend(body: dict[str, Any]) -> dict[str, Any]:
    to, message, reply_to = g.request_from_wire(body)
    sent = encode_body(g.normalize_recipient(to), encode_message(message), reply_to)
    decoded: dict[str, Any] = json.loads(sent)
    return decoded


def test_the_set_is_broad() -> None:
    assert len(BODIES) >= 60
    loaded = [name for name in BODIES if name not in REFUSED]
    assert len(loaded) >= 50


@pytest.mark.parametrize("name", [n for n in BODIES if n not in REFUSED])
def test_a_body_written_by_others_goes_back_exactly(name: str) -> None:
    body = BODIES[name]
    expected = {"messaging_product": "whatsapp", "recipient_type": "individual", **body}
    assert _resend(body) == expected


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_body_the_sdk_cannot_send_as_written_is_refused_with_the_reason(name: str) -> None:
    with pytest.raises(ValueError, match=REFUSED[name]):
        _resend(BODIES[name])
