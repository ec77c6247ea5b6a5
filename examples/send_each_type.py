"""Send one message of every type, against the embedded mock unless you point it elsewhere.

    python examples/send_each_type.py                      # the mock, no credentials
    GUPSHUP_APP_ID=... GUPSHUP_APP_TOKEN=... GUPSHUP_BASE_URL=https://partner.gupshup.io \\
        python examples/send_each_type.py 919876543210     # the real API
"""

from __future__ import annotations

import asyncio
import os
import sys

import gupshup_async as g
from gupshup_async.mock import MockGupshupServer

MESSAGES: list[g.Message] = [
    g.Text(body="Hello from gupshup-async!"),
    g.Image(link="https://example.com/image.jpg", caption="Check out this image!"),
    g.Video(link="https://example.com/video.mp4", caption="Watch this"),
    g.Audio(link="https://example.com/audio.ogg"),
    g.Document(link="https://example.com/invoice.pdf", filename="invoice.pdf"),
    g.Sticker(link="https://example.com/sticker.webp"),
    g.Location(latitude=12.9716, longitude=77.5946, name="Office", address="MG Road"),
    g.Contacts(
        contacts=[
            {
                "name": {"formatted_name": "John Doe", "first_name": "John"},
                "phones": [{"phone": "+1234567890", "type": "WORK"}],
            }
        ]
    ),
    g.ReplyButtons(
        body="Do you want to continue?",
        buttons=[{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}],
    ),
    g.ListMessage(
        body="Choose your favourite:",
        button="View Menu",
        sections=[
            {
                "title": "Menu",
                "rows": [{"id": "pizza", "title": "Pizza"}, {"id": "burger", "title": "Burger"}],
            }
        ],
    ),
    g.AddressRequest(body="Please share your shipping address"),
    g.FlowMessage(
        body="Complete your registration", flow_cta="Start", flow_id="1234567890", screen="WELCOME"
    ),
    g.UrlButton(
        body="Your order has shipped.", display_text="Track it", url="https://example.com/t/42"
    ),
    g.LocationRequest(body="Where should we pick you up?"),
    g.Audio(link="https://example.com/voice.ogg", voice=True),
    g.ProductMessage(
        catalog_id="146265584024623", product_retailer_id="sku-1", body="Back in stock"
    ),
    g.ProductListMessage(
        header="Our best sellers",
        body="Pick what you like",
        catalog_id="146265584024623",
        sections=[{"title": "Shoes", "product_items": [{"product_retailer_id": "sku-1"}]}],
    ),
    g.CatalogMessage(body="Browse our catalog", thumbnail_product_retailer_id="sku-1"),
    g.Template(name="order_update", language="en"),
    g.Template(
        name="order_confirmation",
        language="en_US",
        components=[
            g.TemplateBody(
                parameters=[
                    g.TextParameter(text="Ada"),
                    g.CurrencyParameter(
                        currency=g.Currency(fallback_value="$10.99", code="USD", amount_1000=10990)
                    ),
                ]
            ),
            g.TemplateButton(
                sub_type="url", index=0, parameters=[g.TextParameter(text="order/42")]
            ),
        ],
    ),
]

#: A 1x1 transparent PNG, uploaded once to show `upload_media` and an `id=` image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4f90000000049454e44ae426082"
)


async def send_all(client: g.AsyncGupshupClient, to: str) -> None:
    first: str | None = None
    for message in MESSAGES:
        result = await client.send(to, message)
        first = first or result.message_id
        print(f"{type(message).__name__:>18}  ->  {result.message_id}")
    assert first is not None
    reaction = await client.send(to, g.Reaction(message_id=first, emoji="\N{THUMBS UP SIGN}"))
    print(f"{'Reaction':>18}  ->  {reaction.message_id}")
    media_id = await client.upload_media(PNG, "image/png")
    uploaded = await client.send(to, g.Image(id=media_id, caption="Uploaded just now"))
    print(f"{'Image(id=)':>18}  ->  {uploaded.message_id}  (media {media_id})")
    await client.mark_read(first, typing=True)
    print(f"{'mark_read':>18}  ->  {first}")


async def main() -> None:
    to = sys.argv[1] if len(sys.argv) > 1 else "919876543210"
    if "GUPSHUP_APP_TOKEN" in os.environ:
        async with g.AsyncGupshupClient(
            os.environ["GUPSHUP_APP_ID"],
            os.environ["GUPSHUP_APP_TOKEN"],
            base_url=os.environ.get("GUPSHUP_BASE_URL", "https://partner.gupshup.io"),
        ) as client:
            await send_all(client, to)
        return
    async with (
        MockGupshupServer() as mock,
        g.AsyncGupshupClient(mock.app_id, mock.token, base_url=mock.base_url) as client,
    ):
        await send_all(client, to)
        print(f"The mock accepted {mock.recorder.total_accepted} messages.")


if __name__ == "__main__":
    asyncio.run(main())
