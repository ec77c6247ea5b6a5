"""The console script's rough edges: help that describes, a version, errors in plain words, an
install hint instead of a traceback, a mock that binds before it announces itself."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

from gupshup_async import __version__
from gupshup_async.mock import FAULT_KINDS

from .cli_support import cli_command, cli_env, one_error_line, run


def _options_without_help(help_text: str) -> list[str]:
    """Options of an argparse help with no description: nothing after them on their line,
    and no indented description on the next one."""
    lines = help_text.splitlines()
    undescribed = []
    for index, line in enumerate(lines):
        match = re.match(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if match is None or match.group(2):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if not following.startswith(" " * 20):
            undescribed.append(match.group(1))
    return undescribed


@pytest.mark.parametrize("command", ["mock", "demo", "campaign"])
def test_every_option_of_the_subcommands_is_described(command: str) -> None:
    done = run(cli_command(command, "--help"))
    assert done.returncode == 0, done.stderr
    assert re.findall(r"^  (--[\w-]+)", done.stdout, flags=re.MULTILINE)
    assert _options_without_help(done.stdout) == []


def test_mock_help_lists_every_fault_kind() -> None:
    done = run(cli_command("mock", "--help"))
    text = " ".join(done.stdout.split())
    for kind in FAULT_KINDS - {"ok"}:
        assert kind in text


def test_version() -> None:
    done = run(cli_command("--version"))
    assert done.returncode == 0
    assert done.stdout.strip() == f"gupshup-async {__version__}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["campaign", "x.csv", "--text", "x", "--rate", "fast"], "--rate: must be a number > 0, got 'fast'"),
        (["campaign", "x.csv", "--text", "x", "--concurrency", "1.5"], "--concurrency: must be a whole number >= 1, got '1.5'"),
        (["campaign", "x.csv", "--text", "x", "--max-retries", "-1"], "--max-retries: must be a whole number >= 0, got '-1'"),
        (["mock", "--port", "http"], "--port: must be a port number from 0 to 65535, got 'http'"),
        (["mock", "--latency", "slow"], "--latency: must be a number >= 0, got 'slow'"),
        (["demo", "--recipients", "many"], "--recipients: must be a whole number >= 1, got 'many'"),
    ],
)  # fmt: skip
def test_bad_option_values_are_refused_in_plain_words(argv: list[str], expected: str) -> None:
    done = run(cli_command(*argv))
    assert done.returncode == 2
    assert expected in done.stderr
    assert "_float" not in done.stderr
    assert "_int" not in done.stderr
    assert re.search(r"invalid \w+ value", done.stderr) is None


def test_demo_on_a_plain_install_gives_a_one_line_install_hint() -> None:
    # A plain install has no uvicorn: make its import fail as it would there.
    script = ("import sys; sys.modules['uvicorn'] = None; "
              "from gupshup_async.cli import main; raise SystemExit(main(['demo']))")  # fmt: skip
    done = run([sys.executable, "-c", script], cli_env())
    assert done.returncode == 2
    assert "pip install 'gupshup-async[cli]'" in one_error_line(done.stderr)
    assert done.stdout == ""


def test_the_mock_on_a_port_in_use_says_so_in_one_line_and_prints_no_banner() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run(cli_command("mock", "--port", str(port)))
    assert done.returncode == 2
    assert "address already in use" in one_error_line(done.stderr)
    assert "Mock Gupshup API on" not in done.stdout


def test_the_mock_on_port_0_announces_the_port_it_really_serves() -> None:
    process = subprocess.Popen(cli_command("mock", "--port", "0"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        assert port != 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # bound before the banner: it accepts at once
    finally:
        process.terminate()
        process.communicate(timeout=10)
