"""The reference's example bodies, corrected where DEVELOPERS.md says the reference is wrong,
each paired with the model that must produce it. Shared by the wire tests and the loopback tests.
"""

from __future__ import annotations

from typing import Any

import gupshup_async as g

TO = "919876543210"

CONTACT: dict[str, Any] = {
    "addresses": [
        {
            "street": "123 Main St",
            "city": "New York",
            "state": "NY",
            "zip": "10001",
            "country": "USA",
            "country_code": "US",
            "type": "WORK",
        }
    ],
    "birthday": "1990-01-01",
    "emails": [{"email": "john@example.com", "type": "WORK"}],
    "name": {"formatted_name": "John Doe", "first_name": "John", "last_name": "Doe"},
    "org": {"company": "Example Corp", "department": "Engineering", "title": "Software Engineer"},
    "phones": [{"phone": "+1234567890", "type": "WORK"}],
    "urls": [{"url": "https://example.com", "type": "WORK"}],
}


def _body(kind: str, part: Any, key: str | None = None) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": kind,
        key or kind: part,
    }


#: (name, model, the exact JSON body expected on the wire)
EXAMPLES: list[tuple[str, g.Message, dict[str, Any]]] = [
    (
        "text",
        g.Text(body="Hello! This is a text message."),
        _body("text", {"body": "Hello! This is a text message."}),
    ),
    (
        "text_preview",
        g.Text(body="See https://example.com", preview_url=True),
        _body("text", {"body": "See https://example.com", "preview_url": True}),
    ),
    # The reference sends both id and link; the API takes exactly one.
    (
        "image_link",
        g.Image(link="https://example.com/image.jpg", caption="Check out this image!"),
        _body(
            "image", {"link": "https://example.com/image.jpg", "caption": "Check out this image!"}
        ),
    ),
    (
        "image_id",
        g.Image(id="MEDIA_ID", caption="Check out this image!"),
        _body("image", {"id": "MEDIA_ID", "caption": "Check out this image!"}),
    ),
    (
        "video",
        g.Video(link="https://example.com/video.mp4", caption="Watch this amazing video!"),
        _body(
            "video",
            {"link": "https://example.com/video.mp4", "caption": "Watch this amazing video!"},
        ),
    ),
    ("audio", g.Audio(id="MEDIA_ID"), _body("audio", {"id": "MEDIA_ID"})),
    (
        "document",
        g.Document(link="https://example.com/a.pdf", caption="Invoice", filename="a.pdf"),
        _body(
            "document",
            {"link": "https://example.com/a.pdf", "caption": "Invoice", "filename": "a.pdf"},
        ),
    ),
    ("sticker", g.Sticker(id="MEDIA_ID"), _body("sticker", {"id": "MEDIA_ID"})),
    (
        "location",
        g.Location(latitude=37.44, longitude=-122.16, name="HQ", address="1 Hacker Way"),
        _body(
            "location",
            {"latitude": 37.44, "longitude": -122.16, "name": "HQ", "address": "1 Hacker Way"},
        ),
    ),
    (
        "contacts",
        g.Contacts(contacts=[CONTACT]),
        _body("contacts", [CONTACT]),
    ),
    # The reference's emoji is mojibake; the wire carries the real character.
    (
        "reaction",
        g.Reaction(message_id="MESSAGE_ID_TO_REACT_TO", emoji="\N{THUMBS UP SIGN}"),
        _body("reaction", {"message_id": "MESSAGE_ID_TO_REACT_TO", "emoji": "\N{THUMBS UP SIGN}"}),
    ),
    (
        "reply_buttons",
        g.ReplyButtons(
            body="Please choose an option:",
            buttons=[
                {"id": "option_1", "title": "Option 1"},
                g.ReplyButton(id="option_2", title="Option 2"),
            ],
            header="Header Text",
            footer="Footer Text",
        ),
        _body(
            "interactive",
            {
                "type": "button",
                "header": {"type": "text", "text": "Header Text"},
                "body": {"text": "Please choose an option:"},
                "footer": {"text": "Footer Text"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "option_1", "title": "Option 1"}},
                        {"type": "reply", "reply": {"id": "option_2", "title": "Option 2"}},
                    ]
                },
            },
        ),
    ),
    (
        "list",
        g.ListMessage(
            body="Select an option from the list below:",
            button="View Options",
            sections=[
                {
                    "title": "Main Options",
                    "rows": [
                        {
                            "id": "option_1",
                            "title": "Option 1",
                            "description": "Description for option 1",
                        },
                        {
                            "id": "option_2",
                            "title": "Option 2",
                            "description": "Description for option 2",
                        },
                    ],
                }
            ],
            header="Choose from menu",
            footer="Powered by Our Service",
        ),
        _body(
            "interactive",
            {
                "type": "list",
                "header": {"type": "text", "text": "Choose from menu"},
                "body": {"text": "Select an option from the list below:"},
                "footer": {"text": "Powered by Our Service"},
                "action": {
                    "button": "View Options",
                    "sections": [
                        {
                            "title": "Main Options",
                            "rows": [
                                {
                                    "id": "option_1",
                                    "title": "Option 1",
                                    "description": "Description for option 1",
                                },
                                {
                                    "id": "option_2",
                                    "title": "Option 2",
                                    "description": "Description for option 2",
                                },
                            ],
                        }
                    ],
                },
            },
        ),
    ),
    (
        "address_message",
        g.AddressRequest(
            body="Please share your shipping address",
            values={"name": "CUSTOMER_NAME", "phone_number": "+91xxxxxxxxxx"},
        ),
        _body(
            "interactive",
            {
                "type": "address_message",
                "body": {"text": "Please share your shipping address"},
                "action": {
                    "name": "address_message",
                    "parameters": {
                        "country": "IN",
                        "values": {"name": "CUSTOMER_NAME", "phone_number": "+91xxxxxxxxxx"},
                    },
                },
            },
        ),
    ),
    # The reference posts flows to /msg with Bearer; v3 uses /v3/message with the raw token.
    (
        "flow",
        g.FlowMessage(
            body="Please complete the flow",
            flow_cta="Start Flow",
            flow_id="FLOW_ID",
            flow_token="FLOW_TOKEN",
            screen="WELCOME_SCREEN",
            header="Flow Header",
            footer="Flow Footer",
        ),
        _body(
            "interactive",
            {
                "type": "flow",
                "header": {"type": "text", "text": "Flow Header"},
                "body": {"text": "Please complete the flow"},
                "footer": {"text": "Flow Footer"},
                "action": {
                    "name": "flow",
                    "parameters": {
                        "flow_message_version": "3",
                        "flow_token": "FLOW_TOKEN",
                        "flow_id": "FLOW_ID",
                        "flow_cta": "Start Flow",
                        "flow_action": "navigate",
                        "flow_action_payload": {"screen": "WELCOME_SCREEN"},
                    },
                },
            },
        ),
    ),
    (
        "template",
        g.Template(
            name="order_update",
            language="en",
            components=[{"type": "body", "parameters": [{"type": "text", "text": "42"}]}],
        ),
        _body(
            "template",
            {
                "name": "order_update",
                "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}],
            },
        ),
    ),
]


#: Bodies from Meta's Cloud API guides (developers.facebook.com/docs/whatsapp/cloud-api/...),
#: for the kinds its OpenAPI schema has no example of; placeholders filled in as above.
META_DOC_EXAMPLES: dict[str, dict[str, Any]] = {
    # messages/interactive-cta-url-messages
    "cta_url": _body(
        "interactive",
        {
            "type": "cta_url",
            "header": {"type": "image", "image": {"link": "https://example.com/header.png"}},
            "body": {"text": "Tap the button below to see available dates."},
            "action": {
                "name": "cta_url",
                "parameters": {
                    "display_text": "See Dates",
                    "url": "https://www.luckyshrub.com?clickID=kqDGWd24Q5TRwoEQTICY7W1JKoXvaZOXWAS7h1P76s0R7Paec4",
                },
            },
            "footer": {"text": "Dates subject to change."},
        },
    ),
    # messages/location-request-messages
    "location_request_message": _body(
        "interactive",
        {
            "type": "location_request_message",
            "body": {
                "text": "Let's start with your pickup. You can either manually *enter an "
                "address* or *share your current location*."
            },
            "action": {"name": "send_location"},
        },
    ),
    # messages/audio-messages (voice message)
    "voice": _body("audio", {"id": "1013859600285441", "voice": True}),
    # template messages: a coupon code, a URL suffix, a location header, a flow button
    "template_copy_code": _body(
        "template",
        {
            "name": "coupon_code_fall2023_25off",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "25OFF"},
                        {"type": "text", "text": "25%"},
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "COPY_CODE",
                    "index": 1,
                    "parameters": [{"type": "coupon_code", "coupon_code": "25OFF"}],
                },
            ],
        },
    ),
    "template_url_button": _body(
        "template",
        {
            "name": "order_confirmation",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "header",
                    "parameters": [
                        {
                            "type": "location",
                            "location": {
                                "latitude": "37.483307",
                                "longitude": "122.148981",
                                "name": "Pablo Morales",
                                "address": "1 Hacker Way, Menlo Park, CA 94025",
                            },
                        }
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{"type": "text", "text": "order/860198-230332"}],
                },
            ],
        },
    ),
}
