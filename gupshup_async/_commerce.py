"""Commerce messages: one product, a multi-product list, and the catalog, from a Meta catalog.

Product ids are the catalog's retailer ids (SKUs); the catalog is the one linked to the
WhatsApp Business Account.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator
from typing_extensions import Self

from ._interactive import _Interactive, _named_action
from ._message_base import (
    PRODUCTS_MAX,
    SECTIONS_MAX,
    Footer,
    HeaderText,
    InteractiveBody,
    NonEmpty,
    Part,
    SectionTitle,
    require_unique,
    strict_keys,
)


class ProductMessage(_Interactive):
    """One product (`product`): optional body (<=1024) and footer, no header."""

    interactive_type: ClassVar[str] = "product"
    catalog_id: NonEmpty
    product_retailer_id: NonEmpty
    body: InteractiveBody | None = None
    footer: Footer | None = None

    def _action(self) -> dict[str, Any]:
        return {"catalog_id": self.catalog_id, "product_retailer_id": self.product_retailer_id}

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        action = strict_keys(action, {"catalog_id", "product_retailer_id"}, "interactive.action")
        return cls.model_validate({**fields, **action})


class ProductItem(Part):
    """One product of a section, by its retailer id (SKU)."""

    product_retailer_id: NonEmpty


class ProductSection(Part):
    """A titled group of products; the title (<=24) is required when there are several."""

    title: SectionTitle | None = None
    product_items: Annotated[list[ProductItem], Field(min_length=1, max_length=PRODUCTS_MAX)]


class ProductListMessage(_Interactive):
    """Up to 30 products in 1-10 sections (`product_list`); a text header (<=60) is required."""

    interactive_type: ClassVar[str] = "product_list"
    header: HeaderText
    body: InteractiveBody
    catalog_id: NonEmpty
    sections: Annotated[list[ProductSection], Field(min_length=1, max_length=SECTIONS_MAX)]
    footer: Footer | None = None

    @field_validator("sections")
    @classmethod
    def _products_and_titles(cls, sections: list[ProductSection]) -> list[ProductSection]:
        items = [item.product_retailer_id for s in sections for item in s.product_items]
        if len(items) > PRODUCTS_MAX:
            raise ValueError(f"a product list holds at most {PRODUCTS_MAX} products in total")
        require_unique("product_retailer_id", items)
        if len(sections) > 1 and any(s.title is None for s in sections):
            raise ValueError("every section needs a title when there is more than one")
        return sections

    def _action(self) -> dict[str, Any]:
        return {"catalog_id": self.catalog_id, "sections": [s.wire() for s in self.sections]}

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        action = strict_keys(action, {"catalog_id", "sections"}, "interactive.action")
        return cls.model_validate({**fields, **action})


class CatalogMessage(_Interactive):
    """Show the business's catalog (`catalog_message`): body <=1024, optional footer.

    `thumbnail_product_retailer_id` picks the thumbnail; without it Meta uses the first item.
    """

    interactive_type: ClassVar[str] = "catalog_message"
    body: InteractiveBody
    thumbnail_product_retailer_id: NonEmpty | None = None
    footer: Footer | None = None

    def _action(self) -> dict[str, Any]:
        action: dict[str, Any] = {"name": "catalog_message"}
        if self.thumbnail_product_retailer_id is not None:
            parameters = {"thumbnail_product_retailer_id": self.thumbnail_product_retailer_id}
            action["parameters"] = parameters
        return action

    @classmethod
    def _from_action(cls, fields: dict[str, Any], action: dict[str, Any]) -> Self:
        if "parameters" not in action:
            strict_keys(action, {"name"}, "interactive.action")
            if action.get("name") != "catalog_message":
                raise ValueError("interactive.action.name must be 'catalog_message'")
            return cls.model_validate(fields)
        parameters = _named_action(action, "catalog_message", {"thumbnail_product_retailer_id"})
        if "thumbnail_product_retailer_id" not in parameters:
            raise ValueError("catalog_message parameters: missing 'thumbnail_product_retailer_id'")
        return cls.model_validate({**fields, **parameters})
