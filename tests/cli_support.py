"""Helpers for running the console script in a subprocess against the loopback mock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gupshup_async.mock import MockGupshupServer


def cli_env(server: MockGupshupServer | None = None, **extra: str) -> dict[str, str]:
    """The environment of a console-script run: the mock's credentials, nothing else GUPSHUP_."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUPSHUP_")}
    if server is not None:
        env.update(
            GUPSHUP_APP_TOKEN=server.token,
            GUPSHUP_APP_ID=server.app_id,
            GUPSHUP_BASE_URL=server.base_url,
        )
    env.update(extra)
    return env


def campaign_command(*args: str | Path) -> list[str]:
    """`gupshup-async campaign ARGS...` as this interpreter runs it."""
    return [sys.executable, "-m", "gupshup_async", "campaign", *map(str, args)]


def cli_command(*args: str | Path) -> list[str]:
    """`gupshup-async ARGS...` as this interpreter runs it."""
    return [sys.executable, "-m", "gupshup_async", *map(str, args)]


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run to completion (2 minutes at most), capturing text output."""
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)


def write_numbers(
    path: Path, n: int, *, header: str | None = "phone", extra: tuple[str, ...] = ()
) -> list[str]:
    """`n` distinct valid numbers (then `extra`), one a line under `header`; returns them."""
    numbers = [f"9170{i:08d}" for i in range(n)] + list(extra)
    lines = ([header] if header else []) + numbers
    path.write_text("\n".join(lines) + "\n")
    return numbers


def one_error_line(stderr: str) -> str:
    """The single line a refused input prints; fails when there is more (a traceback)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("gupshup-async: error: "), stderr
    return lines[0]
