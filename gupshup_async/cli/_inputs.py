"""A campaign's other inputs, checked before anything is sent: the message and the output paths.

Every problem is an `InputError` carrying one line for the operator (exit 2); none leaves a
file behind that would block the corrected run. The recipients file is `_recipients_file`.
A value from an input file (a cell, a header, a field name) is shown through `quoted()`: a
short prefix, never a whole 64 Ki-character cell in one terminal line.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
from pathlib import Path
from typing import Any

import pydantic

from .._media import Audio, Document, Image, Sticker, Video
from .._media_upload import check_media
from .._messages import MESSAGE_TYPES, Message, Text, message_from_wire
from .._recipients import mask_recipient
from .._settings import check_base_url

#: Top-level fields a message file may hold besides `type` and the type's own object.
ENVELOPE_FIELDS = frozenset({"messaging_product", "recipient_type"})
#: Fields a message file must not hold, and why: it is one message for everybody.
REFUSED_FIELDS = {
    "to": "the numbers come from RECIPIENTS, not from the message file",
    "context": "a reply quotes one conversation's message; a campaign goes to everybody",
    "biz_opaque_callback_data": "the campaign sets its own on every send (its tag and the "
    "recipient's row), so that delivery webhooks find the recipient",
}
#: The most characters of a value from an input file an error message shows.
QUOTE_CHARS = 40
#: How many values of a list (a file's headers, unexpected fields) an error message shows.
QUOTE_ITEMS = 10
#: The most characters of the models' own words (which may quote the file) relayed in one line.
RELAYED_CHARS = 200


class InputError(Exception):
    """An input that cannot be used: the campaign stops before sending anything (exit 2)."""


def quoted(value: str, *, mask: bool = False) -> str:
    """`value` from an input file as an error message shows it: in quotes, masked as the logs
    mask phone numbers when it may be one, and cut after `QUOTE_CHARS` with "..." and its
    length when longer, so the operator sees what it is without a terminal full of it."""
    shown = mask_recipient(value) if mask else value
    if len(shown) <= QUOTE_CHARS:
        return repr(shown)
    return f"{shown[:QUOTE_CHARS]!r}... ({len(value)} characters)"


def quoted_all(values: list[str], *, mask: bool = False) -> str:
    """The first `QUOTE_ITEMS` of `values`, each `quoted()`, and how many more there are."""
    shown = ", ".join(quoted(value, mask=mask) for value in values[:QUOTE_ITEMS])
    more = len(values) - QUOTE_ITEMS
    return f"{shown} and {more} more" if more > 0 else shown


def known_types() -> list[str]:
    """The message types a message file may give, sorted."""
    return sorted({model.wire_type for model in MESSAGE_TYPES})


def load_message(text: str | None, message_file: Path | None) -> Message:
    """The campaign's message from `--text` or `--message-file` (the API's JSON shape)."""
    if (text is None) == (message_file is None):
        raise InputError("give exactly one of --text or --message-file, or --media")
    if text is not None:
        try:
            return Text(body=text)
        except pydantic.ValidationError as exc:
            raise InputError(f"--text: {_first_error(exc)}") from None
    assert message_file is not None
    return _message_from_file(message_file)


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


def _message_from_file(path: Path) -> Message:
    where = f"message file {path}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except IsADirectoryError:
        raise InputError(f"{where} is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"cannot read {where}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{where} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise InputError(f"{where} is nested too deeply to be a message") from None
    kinds = ", ".join(known_types())
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object with a 'type' ({kinds})")
    for name, reason in REFUSED_FIELDS.items():
        if name in data:
            raise InputError(f"{where}: '{name}' is not allowed in a message file: {reason}")
    kind = data.get("type")
    if kind is None:
        raise InputError(f"{where}: no 'type'; known types: {kinds}")
    if not isinstance(kind, str):
        raise InputError(f"{where}: 'type' must be a string, got {_json_kind(kind)}; known "
                         f"types: {kinds}")  # fmt: skip
    if kind not in known_types():
        raise InputError(f"{where}: unknown type {quoted(kind)}; known types: {kinds}")
    payload = data.get(kind)
    expected = list if kind == "contacts" else dict
    if not isinstance(payload, expected):
        raise InputError(
            f"{where}: '{kind}' must be a JSON {'array' if expected is list else 'object'}, "
            f"got {_json_kind(payload)}"
        )
    extra = sorted(set(data) - {"type", kind} - ENVELOPE_FIELDS)
    if extra:
        raise InputError(
            f"{where}: unexpected top-level field(s) {quoted_all(extra)} beside type {kind!r}"
        )
    try:
        return message_from_wire(data)
    except pydantic.ValidationError as exc:
        raise InputError(f"{where}: {kind}.{_first_error(exc)}") from None
    except RecursionError:
        raise InputError(f"{where} is nested too deeply to be a message") from None
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # The models' own refusals, and shapes they did not expect (a string for an object).
        raise InputError(f"{where}: {kind}: {_one_line(str(exc)) or type(exc).__name__}") from None


def _first_error(exc: pydantic.ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return _one_line(str(exc))
    first = errors[0]
    location = _one_line(".".join(str(part) for part in first["loc"])) or "message"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{location}: {_one_line(first['msg'])}{more}"


def _json_kind(value: Any) -> str:
    names = {str: "a string", bool: "true/false", int: "a number", float: "a number",
             list: "an array", dict: "an object", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _one_line(text: str) -> str:
    """`text` on one line, cut after `RELAYED_CHARS` (it may quote the file's values)."""
    line = " ".join(text.split())
    if len(line) <= RELAYED_CHARS:
        return line
    return f"{line[:RELAYED_CHARS]}... ({len(line)} characters)"


def check_base_url_input(base_url: str, *, allow_insecure_http: bool) -> None:
    """The API base URL as the client will check it, refused before anything is written.

    Plain http to a host that is not loopback sends the token in clear text: refused unless
    `--allow-insecure-http` says the operator means it.
    """
    try:
        check_base_url(base_url, allow_insecure_http=True)  # every other problem, its own words
    except ValueError as exc:
        raise InputError(f"--base-url (or $GUPSHUP_BASE_URL): {exc}") from None
    if allow_insecure_http:
        return
    try:
        check_base_url(base_url)
    except ValueError:
        raise InputError(
            f"--base-url {base_url} would send the token unencrypted to a host that is not "
            "loopback: use https://, or add --allow-insecure-http if you mean it"
        ) from None


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


def check_journal_path(path: Path) -> None:
    """The journal must be a file (or creatable) in an existing, writable directory."""
    if path.is_dir():
        raise InputError(f"--journal {path} is a directory; give a file name")
    _check_directory("--journal", path)
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise InputError(f"--journal {path} cannot be read and written")


def check_results_path(path: Path) -> None:
    """The results file must be writable now, not after everything was sent."""
    if path.is_dir():
        raise InputError(f"--results {path} is a directory; give a file name")
    _check_directory("--results", path)
    probe = path.with_name(path.name + ".tmp")
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if not os.access(probe, os.W_OK):
            raise InputError(f"--results {path}: {probe} is in the way") from None
        return
    except OSError as exc:
        raise InputError(f"--results {path} cannot be written: {exc.strerror}") from None
    os.close(descriptor)
    probe.unlink()


def check_distinct_paths(outputs: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """No output may be an input or another output, whatever its spelling (./x, symlink, link).

    Written at the end (`--results` replaces its file), the recipients file or the journal
    would be lost; a journal opened on the recipients file is not a journal.
    """
    seen = {name: path for name, path in inputs.items() if path is not None}
    for flag, path in outputs.items():
        if path is None:
            continue
        for name, other in seen.items():
            if _same_file(path, other):
                raise InputError(f"{flag} {path} is the {name}; give it a file of its own")
        seen[flag.lstrip("-")] = path


def _same_file(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:  # one does not exist yet: compare where they would be
        return one.resolve() == other.resolve()


def _check_directory(flag: str, path: Path) -> None:
    directory = path.parent
    if not directory.is_dir():
        raise InputError(f"{flag} {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: directory {directory} is not writable")
