"""An error message quotes a value from an input file (a cell, a header, a field name) as a
short, clearly cut prefix, a phone number masked: never a whole 64 Ki-character cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gupshup_async.cli._inputs import InputError, known_types, load_message, quoted
from gupshup_async.cli._recipients_file import MAX_LINE_CHARS, inspect_recipients

from .cli_support import campaign_command, cli_env, one_error_line, run

NUMBERS = [f"91700000{i:04d}" for i in range(30)]
STARS = "*" * 38  # a masked value's first 40 characters: its first two, then stars


def _refusal(path: Path, **options: str) -> str:
    with pytest.raises(InputError) as refused:
        inspect_recipients(path, **options)  # type: ignore[arg-type]
    return str(refused.value)


def test_quoted_shows_a_short_value_whole_and_a_long_one_cut_with_its_length() -> None:
    assert quoted("Name") == "'Name'"
    assert quoted("x" * 40) == "'" + "x" * 40 + "'"
    assert quoted("x" * 41) == "'" + "x" * 40 + "'... (41 characters)"
    assert quoted("919876543210", mask=True) == "'91********10'"


def test_a_mostly_invalid_file_quotes_a_long_first_bad_cell_cut_and_masked(
    tmp_path: Path,
) -> None:
    to = tmp_path / "to.txt"
    long_cell = "Customer notes: " + "x" * 65_000
    assert len(long_cell) <= MAX_LINE_CHARS  # read, not refused as a line too long
    names = [long_cell] + [f"Customer {i}" for i in range(1, 60)]
    to.write_text("phone\n" + "".join(f"{v}\n" for v in names + NUMBERS))
    done = run(campaign_command(to, "--text", "x", "--dry-run"), cli_env())
    assert done.returncode == 2
    assert one_error_line(done.stderr) == (
        f"gupshup-async: error: 60 of the first 90 numbers in {to} are not valid phone numbers "
        f"(line 2: 'Cu{STARS}'... (65016 characters)), reading one number per line; pick the "
        "column with --column, or pass --allow-invalid to send to the valid ones"
    )
    assert len(done.stderr) < 400


def test_a_mostly_invalid_file_masks_a_short_first_bad_cell(tmp_path: Path) -> None:
    to = tmp_path / "to.csv"
    rows = [f"Customer {i},A" for i in range(60)] + [f"{n},B" for n in NUMBERS]
    to.write_text("Phone,Name\n" + "".join(f"{row}\n" for row in rows))
    assert _refusal(to) == (
        f"60 of the first 90 numbers in {to} are not valid phone numbers (line 2: "
        "'Cu****** 0'), reading column 1 'Phone', separated by commas; pick the column with "
        "--column, or pass --allow-invalid to send to the valid ones"
    )


def test_headers_seen_are_each_cut_and_at_most_ten(tmp_path: Path) -> None:
    long_header = "Notes " + "y" * 49_994
    one = tmp_path / "one.csv"
    one.write_text(f"Name,{long_header},City\nA,x,B\n")
    assert _refusal(one) == (
        f"no phone column in {one}: headers seen: 'Name', 'Notes {'y' * 34}'... (50000 "
        "characters), 'City'; name it with --column NAME (or a 1-based number)"
    )
    many = tmp_path / "many.csv"
    many.write_text(",".join(f"c{i}" for i in range(300)) + "\n" + ",".join("x" * 300) + "\n")
    seen = ", ".join(f"'c{i}'" for i in range(10))
    assert _refusal(many, column="Phone") == (
        f"--column Phone: no such header in {many}; headers seen: {seen} and 290 more"
    )


def test_a_first_row_of_numbers_is_masked_when_listed(tmp_path: Path) -> None:
    to = tmp_path / "to.csv"
    to.write_text("917000000001,John Smith\n917000000002,Jane Doe\n")
    assert _refusal(to, column="5") == (
        f"--column 5: {to} has 2 column(s) ('91********01', 'Jo******th'); give a number from "
        "1 or a header name"
    )


def test_a_long_phone_column_name_two_columns_share_is_cut(tmp_path: Path) -> None:
    to = tmp_path / "to.csv"
    name = "Phone" + "." * 100
    to.write_text(f"{name},Name,{name}\n917000000001,A,917000000002\n")
    assert _refusal(to) == (
        f"the phone column 'Phone{'.' * 35}'... (105 characters) appears 2 times in {to} "
        "(columns 1, 3); give the one to read by position: --column N (e.g. --column 1)"
    )


def test_a_long_scientific_cell_is_cut(tmp_path: Path) -> None:
    to = tmp_path / "to.csv"
    to.write_text(f"Name,Phone\nA,919876543210\nB,9.{'1' * 1000}E+11\n")
    assert _refusal(to) == (
        f"{to} line 3: '9.{'1' * 38}'... (1006 characters) is in scientific notation: the "
        "column was saved as a number and lost digits; format it as text in the spreadsheet "
        "and export again"
    )


def test_the_layout_line_cuts_a_long_header(tmp_path: Path) -> None:
    to = tmp_path / "to.csv"
    to.write_text(f"Name,Phone{'.' * 100}\nA,917000000001\n")
    layout = inspect_recipients(to)
    assert (
        layout.describe() == f"column 2 'Phone{'.' * 35}'... (105 characters), separated by commas"
    )


def _message_refusal(tmp_path: Path, message: object) -> str:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(message))
    with pytest.raises(InputError) as refused:
        load_message(None, path)
    return str(refused.value).removeprefix(f"message file {path}: ")


def test_a_message_file_quotes_its_long_values_cut(tmp_path: Path) -> None:
    kinds = ", ".join(known_types())
    assert _message_refusal(tmp_path, {"type": "t" * 1000}) == (
        f"unknown type '{'t' * 40}'... (1000 characters); known types: {kinds}"
    )
    assert _message_refusal(tmp_path, {"type": ["text"] * 1000}) == (
        f"'type' must be a string, got an array; known types: {kinds}"
    )
    extra = {f"k{i}{'k' * 1000}": 1 for i in range(12)}
    first = sorted(extra)[:10]  # k0, k1, k10, k11, k2...
    fields = ", ".join(f"'{name[:40]}'... ({len(name)} characters)" for name in first)
    assert _message_refusal(tmp_path, {"type": "text", "text": {"body": "x"}, **extra}) == (
        f"unexpected top-level field(s) {fields} and 2 more beside type 'text'"
    )


def test_a_message_file_relays_the_models_words_cut(tmp_path: Path) -> None:
    nested = _message_refusal(tmp_path, {"type": "text", "text": {"body": "x", "z" * 1000: 1}})
    assert nested == f"text.{'z' * 200}... (1000 characters): Extra inputs are not permitted"
    product = {"type": "text", "text": {"body": "x"}, "messaging_product": "w" * 1000}
    said = "messaging_product must be 'whatsapp', got '" + "w" * 1000 + "'"
    assert _message_refusal(tmp_path, product) == f"text: {said[:200]}... ({len(said)} characters)"
