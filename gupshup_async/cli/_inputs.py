"""Reading a campaign's inputs: the recipients file (streamed) and the message."""

from __future__ import annotations

import csv
import hashlib
import json
import mimetypes
from collections.abc import Iterator
from pathlib import Path

from .._media import Audio, Document, Image, Sticker, Video
from .._media_upload import check_media
from .._messages import Message, Text, message_from_wire
from .._recipients import normalize_recipient

#: Column names taken as the phone number in a CSV file, in order of preference.
PHONE_COLUMNS = ("phone", "to", "number", "msisdn")


class InputError(Exception):
    """An input that cannot be used: the campaign stops before sending anything (exit 2)."""


def iter_recipients(path: Path) -> Iterator[str]:
    """The numbers in `path`, one at a time, never the whole file in memory.

    A `.csv` file gives the column named phone/to/number/msisdn, else the first column (its
    first row is a header when it names a column or holds no number); any other file gives
    one number per non-blank line.
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read recipients file {path}: {exc.strerror}") from None
    with handle:
        try:
            if path.suffix.lower() == ".csv":
                yield from _csv_numbers(handle)
            else:
                for line in handle:
                    if line.strip():
                        yield line.strip()
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"recipients file {path} is not readable text: {exc}") from None


def _csv_numbers(handle: Iterator[str]) -> Iterator[str]:
    rows = csv.reader(handle)
    first = next(rows, None)
    if first is None:
        return
    names = [cell.strip().lower() for cell in first]
    column = next((names.index(n) for n in PHONE_COLUMNS if n in names), None)
    if column is None:
        column = 0
        if first and _is_number(first[0]):
            yield first[0].strip()
    for row in rows:
        if len(row) > column and row[column].strip():
            yield row[column].strip()


def _is_number(cell: str) -> bool:
    try:
        normalize_recipient(cell.strip())
    except ValueError:
        return False
    return True


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes, read in blocks: what ties a journal to its recipients."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise InputError(f"cannot read recipients file {path}: {exc.strerror}") from None
    return digest.hexdigest()


def load_message(text: str | None, message_file: Path | None) -> Message:
    """The campaign's message from `--text` or `--message-file` (the API's JSON shape)."""
    if (text is None) == (message_file is None):
        raise InputError("give exactly one of --text or --message-file, or --media")
    try:
        if text is not None:
            return Text(body=text)
        assert message_file is not None
        data = json.loads(message_file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise InputError(f"{message_file}: expected a JSON object with a 'type'")
        return message_from_wire(data)
    except OSError as exc:
        raise InputError(f"cannot read message file {message_file}: {exc.strerror}") from None
    except ValueError as exc:  # JSON errors and pydantic's ValidationError alike
        raise InputError(f"invalid message: {exc}") from None


def load_media_message(media: Path, caption: str | None) -> tuple[Message, str]:
    """The media message of `--media PATH` (caption from `--text`) and the file's MIME type.

    Its `id` is `upload:<sha256 of the file>` until the one upload replaces it, so a journal
    is tied to the file's content, not to a media id that changes with every upload.
    """
    mime_type, _ = mimetypes.guess_type(media.name)
    try:
        size = media.stat().st_size
        check_media(mime_type or "", size)
    except OSError as exc:
        raise InputError(f"cannot read media file {media}: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError(f"--media {media}: {exc}") from None
    assert mime_type is not None  # check_media refused an unknown type
    placeholder = "upload:" + file_digest(media)
    kind = mime_type.split("/", 1)[0]
    if mime_type == "image/webp" or kind == "audio":
        if caption is not None:
            raise InputError(f"--media {media}: {mime_type} takes no caption (drop --text)")
        model: type[Audio | Sticker] = Sticker if kind == "image" else Audio
        return model(id=placeholder), mime_type
    if kind == "image":
        return Image(id=placeholder, caption=caption), mime_type
    if kind == "video":
        return Video(id=placeholder, caption=caption), mime_type
    return Document(id=placeholder, caption=caption, filename=media.name), mime_type
