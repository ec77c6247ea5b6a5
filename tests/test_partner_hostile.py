"""The partner endpoints against a hostile server: bounded as `send()` is (issue 9's rules)."""

from __future__ import annotations

import asyncio
import time

import pytest

import gupshup_async as g

from .hostile_server import HostileServer

APP = "app-1"
GUARD = 20.0  # seconds: far above the bounds below, far below "forever"


async def test_an_endless_token_answer_is_cut_and_refused() -> None:
    async with (
        HostileServer("endless") as server,
        g.PartnerClient(partner_token="pt", base_url=server.base_url) as partner,
    ):
        with pytest.raises(g.UnexpectedResponseError) as info:
            await asyncio.wait_for(partner.app_token(APP), GUARD)
    assert info.value.body == ""


async def test_a_dripping_read_receipt_answer_times_out_as_a_whole() -> None:
    async with (
        HostileServer("drip", drip_every=0.5) as server,  # 100 bytes: 50 s in all
        g.AsyncGupshupClient(APP, "sk_t", base_url=server.base_url, timeout=1.0) as c,
    ):
        started = time.monotonic()
        with pytest.raises(g.APITimeoutError) as info:
            await asyncio.wait_for(c.mark_read("wamid.1"), GUARD)
        elapsed = time.monotonic() - started
    assert info.value.ambiguous is True
    assert elapsed < 1.0 + 2.0


async def test_a_silent_server_times_an_upload_out_within_its_timeout() -> None:
    async with (
        HostileServer("silent") as server,
        g.AsyncGupshupClient(APP, "sk_t", base_url=server.base_url) as client,
    ):
        started = time.monotonic()
        with pytest.raises(g.APITimeoutError):
            await asyncio.wait_for(
                client.upload_media(b"%PDF", "application/pdf", timeout=1.0), GUARD
            )
        assert time.monotonic() - started < 1.0 + 2.0


async def test_a_huge_error_answer_is_read_only_up_to_the_cap() -> None:
    async with (
        HostileServer("huge-500") as server,
        g.AsyncGupshupClient(APP, "sk_t", base_url=server.base_url) as client,
    ):
        with pytest.raises(g.ServerError) as info:
            await asyncio.wait_for(client.mark_read("wamid.1"), GUARD)
    assert len(info.value.body) <= 1_048_576
