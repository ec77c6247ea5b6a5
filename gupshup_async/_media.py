"""Media messages: exactly one of an uploaded media `id` or an https `link`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import field_validator, model_validator

from ._message_base import Caption, MessageModel, NonEmpty


class _Media(MessageModel):
    """Media by exactly one of an uploaded media `id` or an https `link`."""

    id: NonEmpty | None = None
    link: NonEmpty | None = None

    @field_validator("link")
    @classmethod
    def _https_only(cls, link: str | None) -> str | None:
        if link is not None and not link.lower().startswith("https://"):
            raise ValueError("link must be an https:// URL")
        return link

    @model_validator(mode="after")
    def _exactly_one_source(self) -> _Media:
        if (self.id is None) == (self.link is None):
            raise ValueError(f"{self.wire_type}: give exactly one of 'id' or 'link'")
        return self


class Image(_Media):
    """An image (jpeg/png, up to 5 MB) with an optional caption of up to 1024 characters."""

    wire_type: ClassVar[str] = "image"
    caption: Caption | None = None


class Video(_Media):
    """A video (mp4/3gpp, up to 16 MB) with an optional caption of up to 1024 characters."""

    wire_type: ClassVar[str] = "video"
    caption: Caption | None = None


class Document(_Media):
    """A document (pdf/txt/office, up to 100 MB), optional caption (<=1024) and filename."""

    wire_type: ClassVar[str] = "document"
    caption: Caption | None = None
    filename: NonEmpty | None = None


class Audio(_Media):
    """An audio clip (aac/amr/mpeg/mp4/ogg, up to 16 MB); audio takes no caption."""

    wire_type: ClassVar[str] = "audio"


class Sticker(_Media):
    """A webp sticker (100 KB static, 500 KB animated); takes no caption.

    The reference passes a URL as the media `id`: a URL belongs in `link`, and an `id` that
    looks like one is refused.
    """

    wire_type: ClassVar[str] = "sticker"

    @field_validator("id")
    @classmethod
    def _id_is_not_a_url(cls, media_id: str | None) -> str | None:
        if media_id is not None and "://" in media_id:
            raise ValueError("id is a media id from an upload; pass a URL as 'link' instead")
        return media_id
