"""The examples run as a user would run them, against the mock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gupshup_async.mock import MockGupshupServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_send_each_type_against_the_mock() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "send_each_type.py")],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "The mock accepted 22 messages." in done.stdout


def test_bulk_campaign_example_sends_each_recipient_at_most_once() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "bulk_campaign.py"), "400"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "400 recipients in" in done.stdout
    assert "most for one recipient: 1" in done.stdout


async def test_starlette_app_awaits_a_send_with_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(EXAMPLES.parent))
    try:
        from examples.starlette_app import app
    finally:
        sys.path.remove(str(EXAMPLES.parent))
    async with MockGupshupServer() as mock:
        monkeypatch.setenv("GUPSHUP_BASE_URL", mock.base_url)
        monkeypatch.setenv("GUPSHUP_APP_ID", mock.app_id)
        monkeypatch.setenv("GUPSHUP_APP_TOKEN", mock.token)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://app") as web,
        ):
            ok = await web.post("/notify", json={"to": "+91 98765 43210", "text": "Shipped"})
            bad = await web.post("/notify", json={"to": "12", "text": "Shipped"})
        assert ok.status_code == 200
        assert ok.json()["message_id"] == mock.recorder.messages[0].id
        assert bad.status_code == 422
        assert "7-15 digits" in bad.json()["error"]
        assert mock.recorder.total_attempts == 1


README = EXAMPLES.parent / "README.md"

#: What the README's fragments (blocks that do not start with an import) take as given: `g`
#: is the SDK with its clients pointed at the mock, and the names the prose defines.
#: Whole programs get nothing: they must run exactly as written.
FRAGMENT_CONTEXT = """\
import contextlib, functools, os, types
import gupshup_async
BASE_URL = os.environ["GUPSHUP_BASE_URL"]
g = types.SimpleNamespace(**{name: getattr(gupshup_async, name) for name in gupshup_async.__all__})
g.AsyncGupshupClient = functools.partial(gupshup_async.AsyncGupshupClient, base_url=BASE_URL)
g.PartnerClient = functools.partial(gupshup_async.PartnerClient, base_url=BASE_URL)
APP_ID, APP_TOKEN = os.environ["GUPSHUP_APP_ID"], os.environ["GUPSHUP_APP_TOKEN"]
EMAIL, PASSWORD = "partner@example.com", "mock-password"
TO = "919876543210"
media_id = "MEDIA_ID"
client = g.AsyncGupshupClient(APP_ID, APP_TOKEN)
numbers = ["+91 98765 43210", "12"]
huge_iterable = (f"9170{i:08d}" for i in range(50))
def make_message(to):
    return g.Text(body="hi")
"""
FRAGMENT_END = "\nawait client.aclose()\n"
#: Files a fragment names, made in its working directory.
FILES = {"brochure.pdf": b"%PDF-1.4\n%%EOF\n"}

#: How a block that only defines a web app's parts is served and called.
WEB_APP_DRIVER = """
import asyncio
import httpx
from starlette.applications import Starlette
from starlette.routing import Route

async def _call_it():
    app = Starlette(routes=[Route("/notify", notify, methods=["POST"])], lifespan=lifespan)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=transport, base_url="http://app"
    ) as web:
        answer = await web.post("/notify")
    assert answer.status_code == 200, answer.text
    print("message_id", answer.json()["message_id"])

asyncio.run(_call_it())
"""

#: Runs a snippet read from stdin; top-level `await` allowed as in the README's fragments.
RUNNER = """\
import ast, asyncio, socket, sys
_resolve = socket.getaddrinfo
def _loopback_only(host, *args, **kwargs):  # a snippet never reaches the real API
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise OSError(f"README snippets may only reach the loopback mock, not {host}")
    return _resolve(host, *args, **kwargs)
socket.getaddrinfo = _loopback_only
code = compile(sys.stdin.read(), "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__"})
if asyncio.iscoroutine(result):
    asyncio.run(result)
"""

#: Messages the mock accepts from each block, found by a line only that block has.
ACCEPTED = {"async def lifespan": 1, "g.Reaction(": 2, "g.BulkSender(": 51}


def _readme_snippets() -> list[tuple[int, str]]:
    snippets, lines = [], README.read_text().splitlines()
    start = None
    for number, line in enumerate(lines, start=1):
        if line.strip() == "```python":
            start = number
        elif line.strip() == "```" and start is not None:
            snippets.append((start, "\n".join(lines[start : number - 1]) + "\n"))
            start = None
    return snippets


SNIPPETS = _readme_snippets()


def test_the_readme_has_python_snippets() -> None:
    assert len(SNIPPETS) >= 4


@pytest.mark.parametrize(
    "source", [s for _, s in SNIPPETS], ids=[f"README line {n}" for n, _ in SNIPPETS]
)
def test_readme_snippet_runs_against_the_mock(source: str, tmp_path: Path) -> None:
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content)
    program = source
    if not source.lstrip().startswith(("import ", "from ")):
        program = FRAGMENT_CONTEXT + source + FRAGMENT_END
    if "async def lifespan" in source:
        program += WEB_APP_DRIVER
    mock = MockGupshupServer()
    mock.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUPSHUP_")}
        env.update(GUPSHUP_APP_ID=mock.app_id, GUPSHUP_APP_TOKEN=mock.token,
                   GUPSHUP_BASE_URL=mock.base_url)  # fmt: skip
        done = subprocess.run([sys.executable, "-c", RUNNER], input=program, env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        accepted = mock.recorder.total_accepted
    finally:
        mock.stop()
    assert done.returncode == 0, done.stderr
    expected = next((n for marker, n in ACCEPTED.items() if marker in source), None)
    if expected is not None:
        assert accepted == expected
