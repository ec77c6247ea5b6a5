"""The recipients file as operators really write it: spreadsheets' CSVs, or one number a line.

The layout is decided once, from the start of the file, before anything is sent:

- the delimiter is sniffed among `,` `;` tab `|` (Excel writes `;` in many locales); a file with
  none of them is one number per line; a UTF-8 BOM is dropped;
- the phone column is `--column` (a header name or a 1-based number), else the first header found
  in `PHONE_HEADERS`, compared without case, spaces or punctuation ("Mobile No.", "WhatsApp
  Number", "msisdn"...); a name that two columns share is refused for the phone column (give
  its position); a file whose first row holds a number has no header, and its phone
  column is the first one holding a number;
- the whole file is then read once: it must decode (`--encoding`), hold at least one number, and
  hold no number in Excel's scientific notation (`9.19876543E+11`: digits already lost);
- more than half of the first `SAMPLE_ROWS` numbers invalid means the wrong column or file:
  refused unless `allow_invalid`;
- no line may be longer than `MAX_LINE_CHARS`: a file without newlines (a binary, a dump) is
  refused at that many characters instead of being read whole into memory.

Every problem is an `InputError` (exit 2) with one line naming it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TextIO

from .._recipients import normalize_recipient
from ._inputs import InputError, quoted, quoted_all

#: Header names taken as the phone column, in order of preference, compared after
#: `header_key()` (lower case, letters and digits only): "Mobile No." is "mobileno".
PHONE_HEADERS = (
    "phone",
    "phonenumber",
    "phoneno",
    "to",
    "number",
    "msisdn",
    "mobile",
    "mobilenumber",
    "mobileno",
    "mobilephone",
    "cell",
    "cellphone",
    "cellnumber",
    "whatsapp",
    "whatsappnumber",
    "whatsappno",
    "wanumber",
    "waid",
    "contact",
    "contactnumber",
    "contactno",
    "recipient",
    "tel",
    "telephone",
)
#: Delimiters the sniffer may pick.
DELIMITERS = ",;\t|"
#: How many first numbers are checked for "mostly invalid: wrong column?".
SAMPLE_ROWS = 100
#: The longest line read, in characters without its line end: a phone number, even in a CSV
#: row with a name and a few more columns, is far shorter; a longer "line" is the wrong file.
MAX_LINE_CHARS = 64 * 1024
_SNIFF_BYTES = 64 * 1024
_READ_CHARS = 64 * 1024
_second = itemgetter(1)  # the cell of a (line number, cell) pair
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")


def unmark(cell: str) -> str:
    """A cell without the marks spreadsheets keep a number as text with: `'919...`, `="919..."`."""
    cell = cell.strip()
    if cell.startswith("'"):
        return cell[1:].strip()
    if len(cell) > 3 and cell.startswith('="') and cell.endswith('"'):
        return cell[2:-1].strip()
    return cell


def header_key(name: str) -> str:
    """A header name compared without case, spaces or punctuation: "Mobile No." -> "mobileno"."""
    return "".join(c for c in name.casefold() if c.isalnum())


@dataclass(frozen=True)
class RecipientsFile:
    """A checked recipients file and how to read it: delimiter, header, phone column."""

    path: Path
    encoding: str
    delimiter: str | None  # None: one number per line
    header: tuple[str, ...] | None
    column: int  # 0-based

    def __iter__(self) -> Iterator[str]:
        """The numbers, one at a time, never the whole file in memory."""
        with _open(self.path, self.encoding) as handle:
            try:
                yield from map(_second, self._numbers(handle))
            except UnicodeDecodeError as exc:  # the file changed since it was inspected
                raise InputError(_decode_problem(self.path, self.encoding, exc)) from None

    def _numbers(self, handle: TextIO) -> Iterator[tuple[int, str]]:
        """(line number, cell) of every non-empty phone cell."""
        lines = bounded_lines(handle, self.path)
        if self.delimiter is None:
            for line_number, line in enumerate(lines, start=1):
                if line.strip() and not (self.header is not None and line_number == 1):
                    yield line_number, unmark(line)
            return
        rows = csv.reader(lines, delimiter=self.delimiter)
        for row in rows:
            if self.header is not None and rows.line_num == 1:
                continue
            if len(row) > self.column and row[self.column].strip():
                yield rows.line_num, unmark(row[self.column])

    def describe(self) -> str:
        """One line for the operator: which column is read, as what."""
        if self.delimiter is None:
            return "one number per line"
        name = quoted(self.header[self.column]) if self.header else "without a header"
        return f"column {self.column + 1} {name}, separated by {_delimiter_name(self.delimiter)}"


def bounded_lines(handle: TextIO, path: Path) -> Iterator[str]:
    """The lines of `handle` (opened with `newline=""`), as `readline()` would give them, from
    chunks of `_READ_CHARS`: `InputError` names the first line over `MAX_LINE_CHARS`.

    Chunks, not `readline(size)` a line: a few C calls a chunk instead of one Python call a
    line (the file is read twice, inspected then loaded); and the bound still holds: a line
    is never held longer than `MAX_LINE_CHARS` plus one chunk.
    """
    line_number = 0
    partial = ""  # the chunk's last line, until its end (or the file's) is read
    while chunk := handle.read(_READ_CHARS):
        # `newline=""` splits as the file's reader does: "\n", "\r" or "\r\n", kept.
        lines = io.StringIO(partial + chunk, newline="").readlines()
        partial = lines.pop()
        if partial.endswith("\n"):  # "\r" waits: the next chunk may start with "\n"
            lines.append(partial)
            partial = ""
        for line in lines:
            line_number += 1
            if len(line) > MAX_LINE_CHARS:
                _check_length(line, line_number, path)
            yield line
        if len(partial) > MAX_LINE_CHARS:
            _check_length(partial, line_number + 1, path)
    if partial:
        _check_length(partial, line_number + 1, path)
        yield partial


def _check_length(line: str, line_number: int, path: Path) -> None:
    if len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
        raise InputError(
            f"recipients file {path} line {line_number} is longer than {MAX_LINE_CHARS} "
            "characters (the limit of a line): is it the right file, one number per line "
            "or a CSV?"
        )


def inspect_recipients(
    path: Path,
    *,
    encoding: str = "utf-8-sig",
    column: str | None = None,
    allow_invalid: bool = False,
) -> RecipientsFile:
    """Check the recipients file end to end and decide how to read it; raise `InputError`."""
    _check_encoding(encoding)
    if path.is_dir():
        raise InputError(f"recipients file {path} is a directory, not a file")
    if not path.exists():
        raise InputError(f"recipients file {path} does not exist")
    if not path.is_file():
        # A pipe (`/dev/stdin`, `<(...)`) would be drained by the first of the several reads.
        raise InputError(
            f"recipients file {path} is not a regular file (a pipe or a device): it is read "
            "more than once; save it to a file first"
        )
    sample = _sample(path, encoding)
    delimiter = _sniff(sample)
    header: tuple[str, ...] | None = None
    index = 0
    lines = sample.splitlines()
    if delimiter is not None:
        first = next(csv.reader(lines, delimiter=delimiter), [])
        header, index = _find_column(path, first, column)
    else:
        header = _single_column_header(path, lines[0].strip() if lines else "", column)
    layout = RecipientsFile(path, encoding, delimiter, header, index)
    rows = 0
    sample_numbers: list[tuple[int, str]] = []
    with _open(path, encoding) as handle:
        try:
            for line_number, cell in layout._numbers(handle):
                # The regex only where it can match: on a plain number it costs ~8k instructions.
                if ("e" in cell or "E" in cell) and _SCIENTIFIC.match(cell):
                    raise InputError(
                        f"{path} line {line_number}: {quoted(cell)} is in scientific notation: "
                        "the column was saved as a number and lost digits; format it as text in "
                        "the spreadsheet and export again"
                    )
                rows += 1
                if len(sample_numbers) < SAMPLE_ROWS:
                    sample_numbers.append((line_number, cell))
        except UnicodeDecodeError as exc:
            raise InputError(_decode_problem(path, encoding, exc)) from None
        except csv.Error as exc:
            raise InputError(f"recipients file {path} is not a readable CSV: {exc}") from None
    if not rows:
        raise InputError(f"recipients file {path} holds no phone number")
    _check_sample(path, layout, sample_numbers, allow_invalid)
    return layout


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"--encoding {encoding}: unknown encoding (e.g. utf-8, cp1252)") from None


def _open(path: Path, encoding: str) -> TextIO:
    try:
        return path.open(newline="", encoding=encoding)
    except OSError as exc:
        raise InputError(f"cannot read recipients file {path}: {exc.strerror}") from None


def _decode_problem(path: Path, encoding: str, exc: UnicodeDecodeError) -> str:
    byte = exc.object[exc.start : exc.start + 1].hex()
    name = "UTF-8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding
    hint = "if it was saved as Latin-1 or Windows-1252, add --encoding cp1252"
    if exc.object[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        hint = 'it starts like UTF-16 (Excel\'s "Unicode Text"): add --encoding utf-16'
    return (
        f"recipients file {path} is not {name} text (byte 0x{byte} near byte {exc.start}); {hint}"
    )


def _sample(path: Path, encoding: str) -> str:
    try:
        with path.open("rb") as raw:
            data = raw.read(_SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read recipients file {path}: {exc.strerror}") from None
    whole = len(data) < _SNIFF_BYTES
    try:
        # Incremental: a character cut at the end of the sample (UTF-16's "\n" is 2 bytes)
        # waits for bytes that never come instead of failing.
        text = codecs.getincrementaldecoder(encoding)().decode(data, final=whole)
    except UnicodeDecodeError as exc:
        raise InputError(_decode_problem(path, encoding, exc)) from None
    if not whole:  # cut at the last full line: no half row
        text = text[: text.rfind("\n") + 1] or text
    return text


def _sniff(sample: str) -> str | None:
    lines = [line for line in sample.splitlines() if line.strip()][:50]
    if not lines or not any(d in line for line in lines for d in DELIMITERS):
        return None
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        # Too few rows to be sure: the delimiter that splits every line the same way.
        for delimiter in DELIMITERS:
            widths = {len(next(csv.reader([line], delimiter=delimiter))) for line in lines}
            if len(widths) == 1 and widths != {1}:
                return delimiter
        return ","


def _find_column(
    path: Path, first: list[str], column: str | None
) -> tuple[tuple[str, ...] | None, int]:
    cells = [cell.strip() for cell in first]
    keys = [header_key(cell) for cell in cells]
    is_header = not any(_is_number(cell) for cell in cells)
    header = tuple(cells) if is_header else None
    seen = quoted_all(cells, mask=not is_header)  # a first row of numbers: phone numbers
    if column is not None:
        if column.strip().isdigit():
            index = int(column) - 1
            if not 0 <= index < len(cells):
                raise InputError(
                    f"--column {column}: {path} has {len(cells)} column(s) ({seen}); "
                    "give a number from 1 or a header name"
                )
            return header, index
        if header is not None and header_key(column) in keys:
            return header, _only_column(path, cells, keys.index(header_key(column)))
        raise InputError(f"--column {column}: no such header in {path}; headers seen: {seen}")
    if header is None:
        return None, next(i for i, cell in enumerate(cells) if _is_number(cell))
    for name in PHONE_HEADERS:
        if name in keys:
            return header, _only_column(path, cells, keys.index(name))
    if len(cells) == 1:
        return header, 0
    raise InputError(
        f"no phone column in {path}: headers seen: {seen}; name it with --column NAME "
        "(or a 1-based number)"
    )


def _only_column(path: Path, cells: list[str], index: int) -> int:
    """`index`, unless another column has the same name (as `header_key` compares them):
    reading the first would be a silent guess, so the position is asked for."""
    key = header_key(cells[index])
    same = [i + 1 for i, cell in enumerate(cells) if header_key(cell) == key]
    if len(same) > 1:
        positions = ", ".join(map(str, same))
        raise InputError(
            f"the phone column {quoted(cells[index])} appears {len(same)} times in {path} "
            f"(columns {positions}); give the one to read by position: --column N (e.g. "
            f"--column {same[0]})"
        )
    return index


def _single_column_header(path: Path, first: str, column: str | None) -> tuple[str, ...] | None:
    """One number per line: the first line is a header only when it names the phone column."""
    if column is not None and column.strip() != "1" and header_key(column) != header_key(first):
        raise InputError(f"--column {column}: {path} has one number per line, no columns")
    if header_key(first) in PHONE_HEADERS or (column is not None and not _is_number(first)):
        return (first,)
    return None


def _check_sample(
    path: Path, layout: RecipientsFile, sample: list[tuple[int, str]], allow_invalid: bool
) -> None:
    invalid = [(line, cell) for line, cell in sample if not _is_number(cell)]
    if allow_invalid or 2 * len(invalid) <= len(sample):
        return
    line, cell = invalid[0]
    raise InputError(
        f"{len(invalid)} of the first {len(sample)} numbers in {path} are not valid phone "
        f"numbers (line {line}: {quoted(cell, mask=True)}), reading {layout.describe()}; pick "
        "the column with --column, or pass --allow-invalid to send to the valid ones"
    )


def _is_number(cell: str) -> bool:
    try:
        normalize_recipient(unmark(cell))
    except ValueError:
        return False
    return True


def _delimiter_name(delimiter: str) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}.get(
        delimiter, repr(delimiter)
    )
