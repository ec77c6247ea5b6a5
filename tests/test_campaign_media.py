"""`gupshup-async campaign --media PATH`: one upload, then every recipient gets the media id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import respx

import gupshup_async as g
from gupshup_async.cli._campaign import CampaignOptions, run_campaign
from gupshup_async.cli._inputs import InputError, load_media_message
from gupshup_async.cli._progress import ProgressDisplay
from gupshup_async.mock import MockGupshupServer

from .conftest import APP_ID, BASE_URL, SEND_URL, SUCCESS

MEDIA_URL = f"{BASE_URL}/partner/app/{APP_ID}/media"


def _recipients(path: Path, n: int) -> list[str]:
    numbers = [f"9170{i:08d}" for i in range(n)]
    path.write_text("\n".join(numbers) + "\n")
    return numbers


async def test_one_upload_then_every_recipient_gets_the_media_id(
    router: respx.Router, client: g.AsyncGupshupClient, tmp_path: Path
) -> None:
    media = tmp_path / "sale.jpg"
    media.write_bytes(b"\xff\xd8\xff" + b"j" * 5000)
    upload = router.post(MEDIA_URL).respond(200, json={"mediaId": "m-42", "status": "success"})
    sends = router.post(SEND_URL).respond(200, json=SUCCESS)
    numbers = _recipients(tmp_path / "to.txt", 25)
    message, mime = load_media_message(media, "Sale starts now")
    options = CampaignOptions(recipients=tmp_path / "to.txt", message=message, rate=None,
                              media=media, media_type=mime)  # fmt: skip

    report = await run_campaign(options, ProgressDisplay(enabled=False), client=client)

    assert report.counts == {"sent": 25}
    assert upload.call_count == 1
    bodies = [json.loads(call.request.content) for call in sends.calls]
    assert sorted(b["to"] for b in bodies) == numbers
    assert {json.dumps(b["image"]) for b in bodies} == {
        json.dumps({"id": "m-42", "caption": "Sale starts now"})
    }


@pytest.mark.parametrize(
    ("name", "size", "caption", "words"),
    [
        ("a.gif", 10, None, "not one Meta accepts"),
        ("a.png", 5 * 1024 * 1024 + 1, None, "past Meta's limit"),
        ("a.ogg", 10, "hi", "takes no caption"),
    ],
)
def test_media_that_cannot_be_sent_is_refused_before_anything(
    tmp_path: Path, name: str, size: int, caption: str | None, words: str
) -> None:
    media = tmp_path / name
    with media.open("wb") as handle:
        handle.truncate(size)
    with pytest.raises(InputError, match=words):
        load_media_message(media, caption)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.pdf", {"type": "document", "document": {"filename": "a.pdf"}}),
        ("a.mp4", {"type": "video", "video": {}}),
        ("a.ogg", {"type": "audio", "audio": {}}),
        ("a.webp", {"type": "sticker", "sticker": {}}),
    ],
)
def test_the_kind_follows_the_files_type(tmp_path: Path, name: str, expected: dict[str, object]) -> None:  # fmt: skip
    media = tmp_path / name
    media.write_bytes(b"x")
    message, _ = load_media_message(media, None)
    wire = message.to_wire()
    kind = wire["type"]
    assert wire[kind].pop("id").startswith("upload:")
    assert wire == expected


def test_the_command_uploads_once_against_the_mock(tmp_path: Path) -> None:
    media = tmp_path / "menu.pdf"
    media.write_bytes(b"%PDF-1.4\n" + b"p" * 10_000)
    _recipients(tmp_path / "to.txt", 30)
    server = MockGupshupServer()
    server.start()
    try:
        env = {"GUPSHUP_APP_TOKEN": server.token, "GUPSHUP_APP_ID": server.app_id,
               "GUPSHUP_BASE_URL": server.base_url, "PATH": ""}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "gupshup_async", "campaign", str(tmp_path / "to.txt"),
             "--media", str(media), "--text", "Our menu", "--rate", "1000", "--no-progress"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert server.app.partner.calls["media"] == 1
        (uploaded,) = server.app.partner.uploads.values()
        assert uploaded == ("application/pdf", "menu.pdf", media.read_bytes())
        assert server.app.recorder.total_accepted == 30
    finally:
        server.stop()


def test_media_with_a_message_file_is_exit_2(tmp_path: Path) -> None:
    media = tmp_path / "a.png"
    media.write_bytes(b"x")
    (tmp_path / "m.json").write_text('{"type": "text", "text": {"body": "x"}}')
    done = subprocess.run(
        [sys.executable, "-m", "gupshup_async", "campaign", str(tmp_path / "to.txt"),
         "--media", str(media), "--message-file", str(tmp_path / "m.json"), "--dry-run"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--media goes with --text" in done.stderr


async def test_a_finished_campaign_run_again_uploads_nothing(
    router: respx.Router, client: g.AsyncGupshupClient, tmp_path: Path
) -> None:
    media = tmp_path / "sale.png"
    media.write_bytes(b"\x89PNG" + b"p" * 100)
    upload = router.post(MEDIA_URL).respond(200, json={"mediaId": "m-1", "status": "success"})
    router.post(SEND_URL).respond(200, json=SUCCESS)
    _recipients(tmp_path / "to.txt", 5)
    message, mime = load_media_message(media, None)
    options = CampaignOptions(recipients=tmp_path / "to.txt", message=message, rate=None,
                              media=media, media_type=mime, journal=tmp_path / "j.sqlite3")  # fmt: skip
    first = await run_campaign(options, ProgressDisplay(enabled=False), client=client)
    again = await run_campaign(options, ProgressDisplay(enabled=False), client=client)
    assert (first.counts, again.counts, again.resumed) == ({"sent": 5}, {"sent": 5}, True)
    assert upload.call_count == 1
