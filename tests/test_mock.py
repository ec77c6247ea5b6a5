"""The mock server: its own validation, its faults and what the client makes of each."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gupshup_async as g
from gupshup_async._client import encode_body, encode_message
from gupshup_async.mock import (
    FaultPlan,
    MockGupshupApp,
    MockGupshupServer,
    TokenBucket,
    check_payload,
    mock_transport,
)

from .reference_examples import EXAMPLES, TO

# ------------------------------------------------------------------ validation table


def _body(**part: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, **part}


def _example(name: str) -> dict[str, Any]:
    return copy.deepcopy(next(body for n, _, body in EXAMPLES if n == name))


def _with(name: str, path: list[str], value: Any) -> dict[str, Any]:
    body = _example(name)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


BAD_PAYLOADS: list[tuple[str, Any, str]] = [
    (
        "reference image with id and link",
        _body(type="image", image={"id": "MEDIA_ID", "link": "https://example.com/image.jpg", "caption": "c"}),
        "exactly one of id or link",
    ),
    (
        "reference video with id and link",
        _body(type="video", video={"id": "MEDIA_ID", "link": "https://example.com/v.mp4"}),
        "exactly one of id or link",
    ),
    ("ftp link", _body(type="image", image={"link": "ftp://example.com/i.jpg"}), "http(s) URL"),
    ("audio caption", _body(type="audio", audio={"id": "1", "caption": "x"}), "unknown field"),
    ("text too long", _body(type="text", text={"body": "x" * 4097}), "1-4096"),
    ("no messaging_product", {"to": TO, "type": "text", "text": {"body": "x"}}, "messaging_product"),
    ("bad to", _with("text", ["to"], "+91 98765"), "to"),
    ("unknown type", _body(type="carousel", carousel={}), "not supported"),
    ("address US", _with("address_message", ["interactive", "action", "parameters", "country"], "US"), "IN or SG"),
    ("four buttons", _with("reply_buttons", ["interactive", "action", "buttons"], [{"type": "reply", "reply": {"id": str(i), "title": str(i)}} for i in range(4)]), "1-3"),
    ("flow version 2", _with("flow", ["interactive", "action", "parameters", "flow_message_version"], "2"), "flow_message_version"),
    ("flow payload with data_exchange", _with("flow", ["interactive", "action", "parameters", "flow_action"], "data_exchange"), "navigate only"),
    ("latitude 91", _with("location", ["location", "latitude"], 91), "latitude"),
    ("location as strings", _with("location", ["location", "latitude"], "37.4"), "latitude"),
    ("list of 11 rows", _with("list", ["interactive", "action", "sections", 0, "rows"], [{"id": str(i), "title": "t"} for i in range(11)]), "1-10 rows"),  # type: ignore[list-item]
    ("contact without second name", _body(type="contacts", contacts=[{"name": {"formatted_name": "J"}}]), "one more name"),
    ("template without language", _body(type="template", template={"name": "t"}), "language"),
    ("reaction without message id", _body(type="reaction", reaction={"emoji": "x"}), "message_id"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "problem"), [c[1:] for c in BAD_PAYLOADS], ids=[c[0] for c in BAD_PAYLOADS]
)
def test_mock_refuses_what_the_api_refuses(payload: Any, problem: str) -> None:
    found = check_payload(payload)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize(
    ("name", "body"), [(e[0], e[2]) for e in EXAMPLES], ids=[e[0] for e in EXAMPLES]
)
def test_mock_accepts_every_corrected_reference_example(name: str, body: dict[str, Any]) -> None:
    assert check_payload(body) is None


async def test_mock_answers_400_with_the_problem_over_http() -> None:
    app = MockGupshupApp(token="t")
    async with httpx.AsyncClient(transport=mock_transport(app), base_url="http://mock") as http:
        bad = BAD_PAYLOADS[0][1]
        response = await http.post(
            "/partner/app/a/v3/message", json=bad, headers={"Authorization": "t"}
        )
        stats = (await http.get("/_mock/stats")).json()
    assert response.status_code == 400
    assert "exactly one of id or link" in response.json()["message"]
    assert stats == {"attempts": 0, "accepted": 0, "max_in_flight": 0, "recipients": {}}


@pytest.mark.parametrize("header", [None, "wrong", "Bearer t"])
async def test_mock_answers_401_for_a_wrong_or_missing_token(header: str | None) -> None:
    app = MockGupshupApp(token="t")
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(transport=mock_transport(app), base_url="http://mock") as http:
        response = await http.post(
            "/partner/app/a/v3/message", json=_example("text"), headers=headers
        )
    assert response.status_code == 401
    assert response.json() == {"status": "error", "message": "Authentication Failed"}


def test_token_bucket_with_an_injected_clock() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=2, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] = 0.1
    assert [bucket.take(), bucket.take()] == [True, False]


def test_fault_plan_is_reproducible_and_order_independent() -> None:
    plan = FaultPlan(seed=7, rates={"429": 0.2, "500": 0.1})
    first = [plan.fault_for(f"91{i:08d}", 0) for i in range(2000)]
    again = [plan.fault_for(f"91{i:08d}", 0) for i in reversed(range(2000))][::-1]
    assert first == again
    assert 300 < first.count("429") < 500
    assert 120 < first.count("500") < 280


def test_fault_plan_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan(rates={"teapot": 0.1})


# ------------------------------------------------------------------ faults on the loopback port

NUMBERS = {kind: f"9190000{i:05d}" for i, kind in enumerate(sorted({
    "429", "429_meta", "429_after", "html_200", "500", "502", "503", "504", "html_502", "drop_before", "drop_after",
    "slow", "empty", "truncated_json", "no_message_id", "ok",
}))}  # fmt: skip


@pytest.fixture
async def faulty() -> AsyncIterator[MockGupshupServer]:
    schedule = {to: [kind] for kind, to in NUMBERS.items()}
    plan = FaultPlan(schedule=schedule, slow_seconds=1.0)
    async with MockGupshupServer(faults=plan) as server:
        yield server


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def faulty_client(faulty: MockGupshupServer) -> AsyncIterator[g.AsyncGupshupClient]:
    policy = g.RetryPolicy(sleep=_no_sleep)
    async with g.AsyncGupshupClient(
        faulty.app_id, faulty.token, base_url=faulty.base_url, timeout=0.3, retry_policy=policy
    ) as client:
        yield client


# kind -> (outcome class or None for success, ambiguous, attempts seen, accepted by the mock)
OUTCOMES: dict[str, tuple[type[g.GupshupError] | None, bool, int, int]] = {
    "ok": (None, False, 1, 1),
    "429": (None, False, 2, 1),
    "429_meta": (None, False, 2, 1),
    "429_after": (None, False, 2, 1),
    "html_200": (g.UnexpectedResponseError, True, 1, 1),
    "503": (None, False, 2, 1),
    "500": (g.ServerError, True, 1, 0),
    "502": (g.ServerError, True, 1, 0),
    "504": (g.ServerError, True, 1, 0),
    "html_502": (g.ServerError, True, 1, 0),
    "drop_before": (g.APIConnectionError, True, 1, 0),
    "drop_after": (g.APIConnectionError, True, 1, 1),
    "slow": (g.APITimeoutError, True, 1, 1),
    "empty": (g.UnexpectedResponseError, True, 1, 1),
    "truncated_json": (g.UnexpectedResponseError, True, 1, 1),
    "no_message_id": (g.UnexpectedResponseError, True, 1, 1),
}


@pytest.mark.parametrize("kind", sorted(OUTCOMES))
async def test_each_fault_gives_its_documented_outcome(
    faulty: MockGupshupServer, faulty_client: g.AsyncGupshupClient, kind: str
) -> None:
    expected_cls, ambiguous, attempts, accepted = OUTCOMES[kind]
    to = NUMBERS[kind]
    if expected_cls is None:
        result = await faulty_client.send(to, g.Text(body="hi"))
        assert [m.id for m in faulty.recorder.messages] == [result.message_id]
    else:
        with pytest.raises(expected_cls) as info:
            await faulty_client.send(to, g.Text(body="hi"))
        assert type(info.value) is expected_cls
        assert info.value.ambiguous is ambiguous
    deadline = time.monotonic() + 5
    # The mock serves from its own thread: poll its recorder, nothing to await on.
    while faulty.recorder.accepted[to] < accepted and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the slow answer is recorded after the client gave up
    assert faulty.recorder.attempts[to] == attempts
    assert faulty.recorder.accepted[to] == accepted


async def test_drop_after_processing_arrives_exactly_once_and_is_ambiguous(
    faulty: MockGupshupServer, faulty_client: g.AsyncGupshupClient
) -> None:
    to = NUMBERS["drop_after"]
    with pytest.raises(g.APIConnectionError) as info:
        await faulty_client.send(to, g.Text(body="hi"), max_retries=5)
    assert info.value.ambiguous is True
    # The owned pool sends straight through aiohttp: its error says the server hung up.
    assert isinstance(info.value.__cause__, aiohttp.ServerDisconnectedError)
    assert faulty.recorder.attempts[to] == 1
    assert faulty.recorder.accepted[to] == 1


async def test_a_401_is_tried_once(mock_server: MockGupshupServer) -> None:
    async with g.AsyncGupshupClient(
        mock_server.app_id, "wrong-token", base_url=mock_server.base_url, max_retries=5
    ) as client:
        with pytest.raises(g.AuthenticationError):
            await client.send(TO, g.Text(body="hi"))
    async with httpx.AsyncClient() as http:
        stats = (await http.get(f"{mock_server.base_url}/_mock/stats")).json()
    assert stats["accepted"] == 0
    assert mock_server.recorder.total_attempts == 0  # refused before it counts as a send


async def test_refused_input_sends_nothing(
    mock_server: MockGupshupServer, loopback_client: g.AsyncGupshupClient
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await loopback_client.send(TO, g.Image(id="1", link="https://a/b.png"))
    with pytest.raises(g.InvalidRecipientError):
        await loopback_client.send("12", g.Text(body="hi"))
    assert mock_server.recorder.stats() == {
        "attempts": 0,
        "accepted": 0,
        "max_in_flight": 0,
        "recipients": {},
    }


async def test_retry_after_of_one_second_delays_the_retry() -> None:
    plan = FaultPlan(schedule={TO: ["429", "ok"]}, retry_after=1.0)
    async with (
        MockGupshupServer(faults=plan) as server,
        g.AsyncGupshupClient(server.app_id, server.token, base_url=server.base_url) as client,
    ):
        started = time.monotonic()
        await client.send(TO, g.Text(body="hi"))
        elapsed = time.monotonic() - started
        arrivals = server.recorder.messages
    assert elapsed >= 1.0
    assert len(arrivals) == 1


async def test_retry_after_as_http_date_is_honoured() -> None:
    plan = FaultPlan(schedule={TO: ["429_meta", "ok"]}, retry_after="date")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with (
        MockGupshupServer(faults=plan) as server,
        g.AsyncGupshupClient(
            server.app_id,
            server.token,
            base_url=server.base_url,
            retry_policy=g.RetryPolicy(sleep=sleep),
        ) as client,
    ):
        await client.send(TO, g.Text(body="hi"))
    assert len(waits) == 1
    assert 0.0 <= waits[0] <= 1.0


@pytest.mark.parametrize(("shape", "code"), [("gupshup", None), ("meta", 130429)])
async def test_throttle_answers_429_past_the_rate(shape: str, code: int | None) -> None:
    async with (
        MockGupshupServer(rate=5, burst=5, throttle_shape=shape) as server,
        g.AsyncGupshupClient(
            server.app_id, server.token, base_url=server.base_url, max_retries=0
        ) as client,
    ):
        outcomes = await asyncio.gather(
            *(client.send(f"9180000{i:05d}", g.Text(body="hi")) for i in range(20)),
            return_exceptions=True,
        )
    throttled = [o for o in outcomes if isinstance(o, g.RateLimitError)]
    assert 5 <= len(outcomes) - len(throttled) <= 6
    assert {(o.status_code, o.code) for o in throttled} == {(429, code)}
    assert server.recorder.total_accepted == len(outcomes) - len(throttled)


async def test_stats_endpoint_counts_per_recipient(
    mock_server: MockGupshupServer, loopback_client: g.AsyncGupshupClient
) -> None:
    await loopback_client.send(TO, g.Text(body="one"))
    await loopback_client.send(TO, g.Text(body="two"))
    async with httpx.AsyncClient() as http:
        stats = (await http.get(f"{mock_server.base_url}/_mock/stats")).json()
        summary = (await http.get(f"{mock_server.base_url}/_mock/stats?summary=1")).json()
    assert stats["recipients"] == {TO: {"attempts": 2, "accepted": 2}}
    assert summary == {"attempts": 2, "accepted": 2, "max_in_flight": 1}


# ------------------------------------------------------------------ the SDK and the mock check each other

# What a model accepts as text: no lone surrogates (not UTF-8) and no NUL (refused by Text).
_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")
_SHORT = st.text(alphabet=_CHARACTERS, min_size=1, max_size=20)
_MESSAGES = st.one_of(
    st.builds(
        g.Text,
        body=st.text(alphabet=_CHARACTERS, min_size=1, max_size=4096),
        preview_url=st.none() | st.booleans(),
    ),
    st.builds(g.Image, link=st.just("https://example.com/a.png"), caption=st.none() | _SHORT),
    st.builds(g.Location, latitude=st.floats(-90, 90), longitude=st.floats(-180, 180)),
    st.lists(_SHORT, min_size=1, max_size=3, unique=True).map(
        lambda titles: g.ReplyButtons(
            body="b", buttons=[{"id": f"id{i}", "title": t} for i, t in enumerate(titles)]
        )
    ),
    st.lists(st.text(alphabet=_CHARACTERS, min_size=1, max_size=24), min_size=1, max_size=10).map(
        lambda titles: g.ListMessage(
            body="b",
            button="Open",
            sections=[{"rows": [{"id": f"r{i}", "title": t} for i, t in enumerate(titles)]}],
        )
    ),
    st.builds(
        g.FlowMessage, body=_SHORT, flow_cta=_SHORT, flow_id=st.just("1"), screen=st.none() | _SHORT
    ),
    st.builds(g.AddressRequest, body=_SHORT, country=st.sampled_from(["IN", "SG"])),
)


@given(_MESSAGES)
def test_whatever_the_models_accept_the_mock_accepts(message: g.Message) -> None:
    body = json.loads(encode_body(TO, encode_message(message)))
    assert check_payload(body) is None
