"""Contact cards: `Contacts` carries 1-257 of them."""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from ._message_base import CONTACTS_MAX, MessageModel, NonEmpty, Part


class ContactName(Part):
    """`formatted_name` plus at least one of the other name fields, as the API requires."""

    formatted_name: NonEmpty
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None

    @model_validator(mode="after")
    def _one_more_name_field(self) -> ContactName:
        others = (self.first_name, self.last_name, self.middle_name, self.suffix, self.prefix)
        if not any(others):
            raise ValueError(
                "name needs one of first_name, last_name, middle_name, suffix or prefix "
                "besides formatted_name"
            )
        return self


class ContactAddress(Part):
    """A postal address of a shared contact."""

    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class ContactEmail(Part):
    """An e-mail address of a shared contact."""

    email: NonEmpty
    type: str | None = None


class ContactPhone(Part):
    """A phone number of a shared contact; `wa_id` adds the WhatsApp chat button."""

    phone: NonEmpty
    type: str | None = None
    wa_id: str | None = None


class ContactUrl(Part):
    """A web address of a shared contact."""

    url: NonEmpty
    type: str | None = None


class ContactOrg(Part):
    """Where a shared contact works."""

    company: str | None = None
    department: str | None = None
    title: str | None = None


class Contact(Part):
    """One contact card; `birthday` is `YYYY-MM-DD`."""

    name: ContactName
    addresses: list[ContactAddress] | None = None
    birthday: str | None = None
    emails: list[ContactEmail] | None = None
    org: ContactOrg | None = None
    phones: list[ContactPhone] | None = None
    urls: list[ContactUrl] | None = None

    @field_validator("birthday")
    @classmethod
    def _iso_date(cls, birthday: str | None) -> str | None:
        if birthday is None:
            return None
        try:
            if len(birthday) != 10:
                raise ValueError
            _dt.date.fromisoformat(birthday)
        except ValueError:
            raise ValueError("birthday must be a real date written YYYY-MM-DD") from None
        return birthday


class Contacts(MessageModel):
    """1-257 contact cards in one message."""

    wire_type: ClassVar[str] = "contacts"
    contacts: Annotated[list[Contact], Field(min_length=1, max_length=CONTACTS_MAX)]

    def to_wire(self) -> dict[str, Any]:
        return {"type": "contacts", "contacts": [c.wire() for c in self.contacts]}
