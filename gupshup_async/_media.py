"""Media messages: exactly one of an uploaded media `id` or a `link` Meta fetches."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, field_validator, model_validator

from ._message_base import Caption, MessageModel, NonEmpty

#: Off by default: Meta fetches http and https links alike. A deliberate choice, see README.
HTTPS_ONLY_DEFAULT = False


class _Media(MessageModel):
    """Media by exactly one of an uploaded media `id` or an http(s) `link`.

    `https_only=True` refuses `http://` links (a choice of ours, not Meta's rule); it is not
    sent.
    """

    id: NonEmpty | None = None
    link: NonEmpty | None = None
    https_only: Annotated[bool, Field(exclude=True, strict=True)] = HTTPS_ONLY_DEFAULT

    @field_validator("link")
    @classmethod
    def _web_link(cls, link: str | None) -> str | None:
        if link is not None and not link.lower().startswith(("https://", "http://")):
            raise ValueError("link must be an http:// or https:// URL that Meta can fetch")
        return link

    @model_validator(mode="after")
    def _exactly_one_source(self) -> _Media:
        if (self.id is None) == (self.link is None):
            raise ValueError(f"{self.wire_type}: give exactly one of 'id' or 'link'")
        if (
            self.https_only
            and self.link is not None
            and not self.link.lower().startswith("https://")
        ):
            raise ValueError(
                f"{self.wire_type}.link must be https:// because https_only=True "
                "(Meta also fetches http://; pass https_only=False to allow it)"
            )
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
    """An audio clip (aac/amr/mpeg/mp4/ogg, up to 16 MB); audio takes no caption.

    `voice=True` plays it as a voice note (Meta wants an OGG file with the OPUS codec).
    """

    wire_type: ClassVar[str] = "audio"
    voice: Annotated[bool, Field(strict=True)] | None = None


class Sticker(_Media):
    """A webp sticker (100 KB static, 500 KB animated); takes no caption.

    The reference passes a URL as the media `id`: a URL belongs in `link`, and an `id` that
    looks like one is refused unless `allow_url_id=True` (a choice of ours; it is not sent).
    """

    wire_type: ClassVar[str] = "sticker"
    allow_url_id: Annotated[bool, Field(exclude=True, strict=True)] = False

    @model_validator(mode="after")
    def _id_is_not_a_url(self) -> Sticker:
        if not self.allow_url_id and self.id is not None and "://" in self.id:
            raise ValueError(
                "id is a media id from an upload; pass a URL as 'link' instead "
                "(or allow_url_id=True to send it as an id anyway)"
            )
        return self
