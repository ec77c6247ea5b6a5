"""The campaign's inputs as operators really give them: spreadsheet CSVs, wrong encodings,
paths that cannot work, message files with mistakes. Checked before anything is sent, one
line each, exit 2, nothing left behind that blocks the corrected run."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gupshup_async.cli import _recipients_file
from gupshup_async.cli._inputs import InputError
from gupshup_async.cli._recipients_file import (
    MAX_LINE_CHARS,
    PHONE_HEADERS,
    bounded_lines,
    header_key,
    inspect_recipients,
)
from gupshup_async.mock import MockGupshupServer

from .cli_support import campaign_command, cli_env, one_error_line, run, write_numbers

NUMBERS = [f"9170{i:08d}" for i in range(30)]


@pytest.fixture(scope="module")
def server() -> Iterator[MockGupshupServer]:
    mock = MockGupshupServer()
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(autouse=True)
def _fresh_counts(server: MockGupshupServer) -> None:
    server.recorder.reset()


# ---------------------------------------------------------------- 10.4 spreadsheet CSVs


@pytest.mark.parametrize(
    ("delimiter", "bom"), [(";", True), (",", False), ("\t", False), ("|", True)]
)
def test_the_delimiter_is_sniffed_and_the_phone_column_found_by_its_header(
    server: MockGupshupServer, tmp_path: Path, delimiter: str, bom: bool
) -> None:
    to = tmp_path / "customers.csv"
    rows = [["Name", "Mobile No.", "City"]]
    rows += [[f"Customer {i}", f"+91 {n[2:7]} {n[7:]}", "Pune"] for i, n in enumerate(NUMBERS)]
    text = "\r\n".join(delimiter.join(row) for row in rows) + "\r\n"
    to.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    done = run(campaign_command(to, "--text", "x", "--rate", "1000"), cli_env(server))

    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(server.recorder.accepted) == NUMBERS
    assert server.recorder.total_accepted == len(NUMBERS)
    assert "invalid      0" in done.stdout


@pytest.mark.parametrize(
    "header", ["WhatsApp Number", "msisdn", "PHONE_NUMBER", "mobile-no", "Contact No"]
)
def test_header_names_with_case_space_and_punctuation_variants(
    server: MockGupshupServer, tmp_path: Path, header: str
) -> None:
    to = tmp_path / "to.csv"
    to.write_text(f"id,{header}\n" + "".join(f"{i},{n}\n" for i, n in enumerate(NUMBERS)))
    done = run(campaign_command(to, "--text", "x", "--dry-run"), cli_env(server))
    assert done.returncode == 0, done.stderr
    assert f"to send      {len(NUMBERS)}" in done.stdout
    assert f"column 2 '{header}'" in done.stdout


def test_no_phone_header_exits_2_listing_the_headers_then_column_picks_it(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to = tmp_path / "to.csv"
    to.write_text("Name,Digits,City\n" + "".join(f"A,{n},B\n" for n in NUMBERS))
    refused = run(campaign_command(to, "--text", "x"), cli_env(server))
    line = one_error_line(refused.stderr)
    assert refused.returncode == 2
    assert "headers seen: 'Name', 'Digits', 'City'" in line
    assert "--column" in line
    for column in ("Digits", "digits", "2"):
        server.recorder.reset()
        done = run(campaign_command(to, "--text", "x", "--rate", "1000", "--column", column),
                   cli_env(server))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert server.recorder.total_accepted == len(NUMBERS)
    unknown = run(campaign_command(to, "--text", "x", "--column", "Phone"), cli_env(server))
    assert unknown.returncode == 2
    assert "headers seen" in one_error_line(unknown.stderr)
    assert server.recorder.total_attempts == len(NUMBERS)  # the refused runs sent nothing


OFFICE = [f"9180{i:08d}" for i in range(len(NUMBERS))]


@pytest.mark.parametrize("column", [None, "Phone", "phone"])
def test_a_phone_column_name_two_columns_share_exits_2_asking_for_a_position(
    server: MockGupshupServer, tmp_path: Path, column: str | None
) -> None:
    to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
    rows = "".join(f"{o},A,{n}\n" for o, n in zip(OFFICE, NUMBERS, strict=True))
    to.write_text("Phone,Name,PHONE\n" + rows)
    chosen = ["--column", column] if column is not None else []
    refused = run(campaign_command(to, "--text", "x", "--journal", journal, *chosen),
                  cli_env(server))  # fmt: skip
    assert refused.returncode == 2, refused.stdout
    assert one_error_line(refused.stderr) == (
        f"gupshup-async: error: the phone column 'Phone' appears 2 times in {to} (columns 1, "
        "3); give the one to read by position: --column N (e.g. --column 1)"
    )
    assert server.recorder.total_attempts == 0
    assert not journal.exists()
    by_position = run(campaign_command(to, "--text", "x", "--rate", "1000", "--column", "3"),
                      cli_env(server))  # fmt: skip
    assert by_position.returncode == 0, by_position.stderr
    assert sorted(server.recorder.accepted) == NUMBERS


def test_a_name_two_other_columns_share_is_allowed(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to = tmp_path / "to.csv"
    to.write_text("Name,Mobile,Name\n" + "".join(f"A,{n},B\n" for n in NUMBERS))
    done = run(campaign_command(to, "--text", "x", "--rate", "1000"), cli_env(server))
    assert done.returncode == 0, done.stderr
    assert sorted(server.recorder.accepted) == NUMBERS


def test_excel_scientific_notation_is_refused_naming_the_lost_digits(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to = tmp_path / "to.csv"
    to.write_text("Name,Phone\nA,919876543210\nB,9.19876543E+11\n")
    done = run(campaign_command(to, "--text", "x"), cli_env(server))
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "'9.19876543E+11'" in line
    assert "saved as a number and lost digits" in line
    assert server.recorder.total_attempts == 0


@pytest.mark.parametrize("dry_run", [False, True])
def test_mostly_invalid_first_rows_stop_before_sending_unless_allowed(
    server: MockGupshupServer, tmp_path: Path, dry_run: bool
) -> None:
    to = tmp_path / "to.csv"
    names = [f"Customer {i}" for i in range(60)]
    to.write_text("phone\n" + "".join(f"{v}\n" for v in names + NUMBERS))
    extra = ["--dry-run"] if dry_run else []
    refused = run(campaign_command(to, "--text", "x", *extra), cli_env(server))
    assert refused.returncode == 2
    line = one_error_line(refused.stderr)
    assert "60 of the first 90 numbers" in line
    assert "--allow-invalid" in line
    allowed = run(campaign_command(to, "--text", "x", "--rate", "1000", "--allow-invalid", *extra),
                  cli_env(server))  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert server.recorder.total_accepted == (0 if dry_run else len(NUMBERS))


# ---------------------------------------------------------------- 10.5 inputs checked in time


def test_a_non_utf8_file_leaves_no_journal_behind_and_the_corrected_run_sends(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
    table = "name,phone\n" + "".join(f"José {i},{n}\n" for i, n in enumerate(NUMBERS))
    to.write_bytes(table.encode("cp1252"))
    args = campaign_command(to, "--text", "x", "--rate", "1000", "--journal", journal)
    refused = run(args, cli_env(server))
    assert refused.returncode == 2
    line = one_error_line(refused.stderr)
    assert "not UTF-8 text" in line
    assert "--encoding cp1252" in line
    assert not journal.exists()

    with_encoding = run([*args, "--encoding", "cp1252"], cli_env(server))
    assert with_encoding.returncode == 0, with_encoding.stderr
    assert server.recorder.total_accepted == len(NUMBERS)

    other = tmp_path / "other.sqlite3"
    to.write_text(table, encoding="utf-8")  # or the file fixed and saved again
    fixed = run(campaign_command(to, "--text", "x", "--journal", other), cli_env(server))
    assert fixed.returncode == 0, fixed.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"recipients": "{tmp}"}, "is a directory, not a file"),
        ({"recipients": "{empty}"}, "holds no phone number"),
        ({"recipients": "{header_only}"}, "holds no phone number"),
        ({"--journal": "{tmp}/missing/j.sqlite3"}, "directory {tmp}/missing does not exist"),
        ({"--journal": "{tmp}"}, "is a directory"),
        ({"--results": "{tmp}/missing/r.jsonl"}, "directory {tmp}/missing does not exist"),
        ({"--results": "{tmp}"}, "is a directory"),
        ({"--encoding": "klingon"}, "unknown encoding"),
    ],
)
def test_unusable_paths_exit_2_in_one_line_before_sending(
    server: MockGupshupServer, tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    to = tmp_path / "to.csv"
    write_numbers(to, 5)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header_only.csv").write_text("phone\n")
    paths = {"tmp": tmp_path, "empty": tmp_path / "empty.csv",
             "header_only": tmp_path / "header_only.csv"}  # fmt: skip
    options = {"recipients": str(to), "--results": str(tmp_path / "r.jsonl")}
    options.update({k: v.format(**paths) for k, v in change.items()})
    argv = [options.pop("recipients"), "--text", "x"]
    for flag, value in options.items():
        argv += [flag, value]
    done = run(campaign_command(*argv), cli_env(server))

    assert done.returncode == 2, done.stdout
    assert expected.format(**paths) in one_error_line(done.stderr)
    assert server.recorder.total_attempts == 0


def test_an_unwritable_results_file_is_found_before_sending(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to = tmp_path / "to.csv"
    write_numbers(to, 5)
    # /proc takes no new files, for root too (a chmod would not stop root).
    done = run(campaign_command(to, "--text", "x", "--results", "/proc/results.jsonl"),
               cli_env(server))  # fmt: skip
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "--results /proc/results.jsonl" in line
    assert "not writable" in line or "cannot be written" in line
    assert server.recorder.total_attempts == 0


# ---------------------------------------------------------------- 10.6 message-file mistakes


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "txt", "text": {"body": "x"}}, "unknown type 'txt'; known types: "),
        ({"text": {"body": "x"}}, "no 'type'; known types: "),
        ({"type": "text", "text": "x"}, "'text' must be a JSON object, got a string"),
        ({"type": "text", "text": {"body": 5}}, "text.body: "),
        ({"type": "image", "image": {"link": 12}}, "image.link: "),
        (
            {"type": "image", "image": {"link": "https://e.x/a.jpg", "caption": {"a": 1}}},
            "image.caption",
        ),
        ({"type": "interactive", "interactive": {"type": "button", "body": "x"}}, "interactive: "),
        (
            {
                "type": "interactive",
                "interactive": {"type": "button", "body": {"text": "x"}, "action": "x"},
            },
            "interactive: ",
        ),
        ({"type": "contacts", "contacts": [5]}, "contacts."),
        (
            {"type": "text", "text": {"body": "x"}, "to": "919876543210"},
            "'to' is not allowed in a message file",
        ),
        (
            {"type": "text", "text": {"body": "x"}, "context": {"message_id": "w"}},
            "'context' is not allowed",
        ),
        (
            {"type": "text", "text": {"body": "x"}, "biz_opaque_callback_data": "mine"},
            "'biz_opaque_callback_data' is not allowed in a message file: the campaign sets "
            "its own on every send",
        ),
        ([1, 2], "expected a JSON object with a 'type'"),
    ],
)
def test_message_file_mistakes_are_one_line_and_exit_2(
    server: MockGupshupServer, tmp_path: Path, message: object, expected: str
) -> None:
    to, path = tmp_path / "to.csv", tmp_path / "m.json"
    write_numbers(to, 3)
    path.write_text(json.dumps(message))
    done = run(campaign_command(to, "--message-file", path), cli_env(server))

    assert done.returncode == 2, done.stdout
    line = one_error_line(done.stderr)
    assert expected in line
    if "known types" in expected:
        assert "text, video" in line
        assert "interactive" in line
    assert server.recorder.total_attempts == 0


@pytest.mark.parametrize("where", ["top", "inside"])
def test_a_deeply_nested_message_file_is_one_line(
    server: MockGupshupServer, tmp_path: Path, where: str
) -> None:
    to, path = tmp_path / "to.csv", tmp_path / "m.json"
    write_numbers(to, 3)
    deep = "[" * 100_000 + "]" * 100_000
    if where == "top":
        path.write_text(deep)
    else:
        path.write_text('{"type": "text", "text": {"body": "x", "preview_url": ' + deep + "}}")
    done = run(campaign_command(to, "--message-file", path), cli_env(server))
    assert done.returncode == 2
    one_error_line(done.stderr)
    assert server.recorder.total_attempts == 0


# ---------------------------------------------------------------- 10.7 personal data, 0600


def test_journal_and_results_are_readable_by_their_owner_only(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to, journal, results = tmp_path / "to.csv", tmp_path / "j.sqlite3", tmp_path / "r.jsonl"
    write_numbers(to, 5)
    done = run(campaign_command(to, "--text", "x", "--journal", journal, "--results", results),
               cli_env(server))  # fmt: skip
    assert done.returncode == 0, done.stderr
    created = [p for p in tmp_path.iterdir() if p.name.startswith(("j.sqlite3", "r.jsonl"))]
    assert {p.name for p in created} >= {"j.sqlite3", "j.sqlite3.lock", "r.jsonl"}
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in created} == {
        p.name: "0o600" for p in created
    }


def test_the_readme_lists_exactly_the_header_names_taken_as_the_phone_column() -> None:
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    listed = readme.split("compared without case, spaces or punctuation: ", 1)[1]
    listed = listed.split(". Otherwise", 1)[0]
    assert [header_key(name) for name in listed.split(", ")] == list(PHONE_HEADERS)


# ---------------------------------------------------------------- a "line" that never ends

#: Runs the console script in a child and prints the peak of what Python allocated for it:
#: a first run on a small file (argv[1]) takes the same path, so lazy imports are not counted.
_MEASURED_RUN = """
import contextlib, io, sys, tracemalloc
import gupshup_async.cli as cli
small, command, recipients, *rest = sys.argv[1:]
with contextlib.redirect_stderr(io.StringIO()):
    cli.main([command, small, *rest])
tracemalloc.start()
status = cli.main([command, recipients, *rest])
print(tracemalloc.get_traced_memory()[1])
sys.exit(status)
"""


def test_a_recipients_file_without_newlines_is_refused_at_the_line_limit_not_read_whole(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to, journal = tmp_path / "dump.bin", tmp_path / "j.sqlite3"
    size = 8 * 1024 * 1024
    to.write_bytes(b"9" * size)  # digits, so it decodes and reads as "one number per line"
    small = tmp_path / "small.bin"
    small.write_bytes(b"9" * 2 * MAX_LINE_CHARS)
    done = run(
        [sys.executable, "-c", _MEASURED_RUN, str(small), "campaign", str(to), "--text", "x",
         "--journal", str(journal)],
        cli_env(server),
    )  # fmt: skip
    peak = int(done.stdout)
    assert peak < size / 8, f"peak {peak} bytes for a {size}-byte file"
    assert done.returncode == 2, done.stderr
    _assert_refused_as_too_long(done, to, 1, journal, server)


def _assert_refused_as_too_long(
    done: subprocess.CompletedProcess[str],
    to: Path,
    line: int,
    journal: Path,
    server: MockGupshupServer,
) -> None:
    """The campaign refused `to` at `line` for its length, before any journal or send."""
    assert one_error_line(done.stderr) == (
        f"gupshup-async: error: recipients file {to} line {line} is longer than {MAX_LINE_CHARS} "
        "characters (the limit of a line): is it the right file, one number per line or a CSV?"
    )
    assert not journal.exists()
    assert server.recorder.total_attempts == 0


def test_a_csv_row_over_the_line_limit_is_refused_naming_its_line(
    server: MockGupshupServer, tmp_path: Path
) -> None:
    to, journal = tmp_path / "to.csv", tmp_path / "j.sqlite3"
    rows = ["phone,name", *(f"{n},Customer" for n in NUMBERS[:3])]
    rows.append(f"{NUMBERS[3]}," + "x" * MAX_LINE_CHARS)  # line 5: one character too long
    rows.append(f"{NUMBERS[4]},Customer")
    to.write_text("\r\n".join(rows) + "\r\n")
    done = run(campaign_command(to, "--text", "x", "--journal", journal), cli_env(server))
    assert done.returncode == 2, done.stderr
    _assert_refused_as_too_long(done, to, 5, journal, server)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_a_line_of_exactly_the_limit_is_read_whatever_its_line_end(
    tmp_path: Path, end: str
) -> None:
    to = tmp_path / "to.csv"
    longest = f"{NUMBERS[1]}," + "x" * (MAX_LINE_CHARS - len(NUMBERS[1]) - 1)
    assert len(longest) == MAX_LINE_CHARS
    to.write_text(end.join(["phone,name", f"{NUMBERS[0]},a", longest, f"{NUMBERS[2]},c"]) + end)
    assert list(inspect_recipients(to)) == NUMBERS[:3]


def _readline_lines(text: str, limit: int) -> tuple[list[str], int | None]:
    """The lines `readline()` gives for `text` up to the first over `limit`, and its number."""
    handle, lines = io.StringIO(text, newline=""), list[str]()
    while line := handle.readline():
        if len(line.rstrip("\r\n")) > limit:
            return lines, len(lines) + 1
        lines.append(line)
    return lines, None


@given(st.text(alphabet='9a,"\r\n', max_size=60))
def test_chunked_lines_are_readlines_lines_with_the_same_limit_and_line_number(text: str) -> None:
    """Chunks of 7 characters against a limit of 5: every line end split across chunks."""
    expected, too_long = _readline_lines(text, 5)
    read: list[str] = []
    refused: int | None = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_recipients_file, "_READ_CHARS", 7)
        patch.setattr(_recipients_file, "MAX_LINE_CHARS", 5)
        try:
            for line in bounded_lines(io.StringIO(text, newline=""), Path("to.csv")):
                read.append(line)
        except InputError as exc:
            refused = int(str(exc).split(" line ")[1].split()[0])
    assert (read, refused) == (expected, too_long)
