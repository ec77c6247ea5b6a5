from __future__ import annotations

import email.utils

import httpx
import pytest
import respx

import gupshup_async as g
from gupshup_async._retry import parse_retry_after

from .conftest import APP_ID, BASE_URL, SEND_URL, SUCCESS, TOKEN
from .reference_examples import TO


class Sleeps:
    """An injected sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _client(router: respx.Router, sleeps: Sleeps, **kwargs: object) -> g.AsyncGupshupClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    policy = g.RetryPolicy(sleep=sleeps, random=lambda: 0.5, **kwargs)  # type: ignore[arg-type]
    return g.AsyncGupshupClient(
        APP_ID, TOKEN, base_url=BASE_URL, http_client=http, retry_policy=policy
    )


THROTTLED = httpx.Response(429, json={"status": "error", "message": "Too Many Requests"})
UNAVAILABLE = httpx.Response(503, json={"status": "error", "message": "Service Unavailable"})
OK = httpx.Response(200, json=SUCCESS)


@pytest.mark.parametrize("first", [THROTTLED, UNAVAILABLE])
async def test_throttling_and_503_are_retried_then_succeed(first: httpx.Response) -> None:
    router, sleeps = respx.Router(), Sleeps()
    route = router.post(SEND_URL).mock(side_effect=[first, OK])
    result = await _client(router, sleeps).send(TO, g.Text(body="hi"))
    assert result.message_id == "gs-1"
    assert route.call_count == 2
    assert sleeps.waits == [0.25]  # random 0.5 x min(8, 0.5 * 2**0)


async def test_backoff_is_exponential_with_full_jitter_and_stops_at_max_retries() -> None:
    router, sleeps = respx.Router(), Sleeps()
    route = router.post(SEND_URL).mock(return_value=THROTTLED)
    with pytest.raises(g.RateLimitError):
        await _client(router, sleeps, max_retries=4, backoff_max=1.5).send(TO, g.Text(body="x"))
    assert route.call_count == 5
    assert sleeps.waits == [0.25, 0.5, 0.75, 0.75]


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_ambiguous_5xx_is_not_retried_by_default(status: int) -> None:
    router, sleeps = respx.Router(), Sleeps()
    route = router.post(SEND_URL).respond(status, json={"status": "error", "message": "x"})
    with pytest.raises(g.ServerError) as info:
        await _client(router, sleeps).send(TO, g.Text(body="hi"))
    assert info.value.ambiguous is True
    assert route.call_count == 1


async def test_retry_ambiguous_opts_in() -> None:
    router, sleeps = respx.Router(), Sleeps()
    error = httpx.Response(500, json={"status": "error", "message": "x"})
    route = router.post(SEND_URL).mock(side_effect=[error, OK])
    await _client(router, sleeps, retry_ambiguous=True).send(TO, g.Text(body="hi"))
    assert route.call_count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_4xx_is_never_retried(status: int) -> None:
    router, sleeps = respx.Router(), Sleeps()
    route = router.post(SEND_URL).respond(status, json={"status": "error", "message": "no"})
    with pytest.raises(g.APIError):
        await _client(router, sleeps, max_retries=5).send(TO, g.Text(body="hi"))
    assert route.call_count == 1
    assert sleeps.waits == []


async def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    router, sleeps = respx.Router(), Sleeps()
    router.post(SEND_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={}),
            httpx.Response(429, headers={"Retry-After": "600"}, json={}),
            OK,
        ]
    )
    await _client(router, sleeps).send(TO, g.Text(body="hi"))
    assert sleeps.waits == [3.0, 60.0]


async def test_per_call_max_retries_overrides_the_client() -> None:
    router, sleeps = respx.Router(), Sleeps()
    route = router.post(SEND_URL).mock(return_value=THROTTLED)
    with pytest.raises(g.RateLimitError):
        await _client(router, sleeps).send(TO, g.Text(body="hi"), max_retries=0)
    assert route.call_count == 1


async def test_every_attempt_reaches_the_hook_without_token_or_number() -> None:
    router, sleeps = respx.Router(), Sleeps()
    router.post(SEND_URL).mock(side_effect=[THROTTLED, OK])
    events: list[g.AttemptEvent] = []
    client = _client(router, sleeps)
    client.on_attempt = events.append
    await client.send(TO, g.Text(body="hi"))
    assert [(e.attempt, e.status_code, e.retry_in) for e in events] == [
        (1, 429, 0.25),
        (2, 200, None),
    ]
    assert all(e.recipient == "91********10" for e in events)
    assert all(TOKEN not in repr(e) for e in events)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": email.utils.formatdate(1_000_010.0, usegmt=True)}, 10.0),
        ({"retry-after": email.utils.formatdate(999_000.0, usegmt=True)}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers), now=1_000_000.0) == expected


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        g.RetryPolicy(max_retries=-1)


def _throttled(
    status: int, code: int | None = None, retry_after: float | None = None
) -> g.APIError:
    return g.RateLimitError("slow down", status_code=status, code=code, retry_after=retry_after)


@pytest.mark.parametrize(
    ("error", "account_throttled"),
    [
        (_throttled(429), True),
        (_throttled(400, 4), True),
        (_throttled(400, 80007), True),
        (_throttled(400, 130429), True),
        (_throttled(429, 4001), True),  # a 429 is about the rate whatever the code
        (_throttled(400, 4001), False),  # "API rate limited": says nothing about the rate
        (_throttled(400, 131056), False),  # pair rate: one recipient
        (_throttled(429, 131056), False),
        (g.ServerError("busy", status_code=503), False),
    ],
)
def test_only_rate_dependent_throttling_concerns_the_account(
    error: g.APIError, account_throttled: bool
) -> None:
    decision = g.RetryPolicy(random=lambda: 0.5).decide(error, 0)
    assert decision.retry is True
    assert decision.account_throttled is account_throttled


def test_an_absurd_retry_after_is_capped_in_the_one_decision() -> None:
    policy = g.RetryPolicy(retry_after_max=60.0)
    decision = policy.decide(_throttled(429, retry_after=1e9), 0)
    assert (decision.retry, decision.wait, decision.pause) == (True, 60.0, 60.0)
    last = policy.decide(_throttled(429, retry_after=1e9), 2)  # retries used up: still pause
    assert (last.retry, last.wait, last.pause, last.account_throttled) == (False, 0.0, 60.0, True)


def test_pair_rate_waits_four_to_the_n_capped_and_4001_backs_off() -> None:
    policy = g.RetryPolicy(max_retries=10, random=lambda: 0.5, retry_after_max=60.0)
    pair = _throttled(400, 131056)
    assert [policy.decide(pair, n).wait for n in range(5)] == [1.0, 4.0, 16.0, 60.0, 60.0]
    assert policy.decide(pair, 0).pause is None
    limited = _throttled(400, 4001, retry_after=None)
    assert [policy.decide(limited, n).wait for n in range(3)] == [0.25, 0.5, 1.0]


async def test_send_uses_the_pair_rate_wait() -> None:
    router, sleeps = respx.Router(), Sleeps()
    pair = httpx.Response(400, json={"error": {"message": "(#131056) pair rate", "code": 131056}})
    router.post(SEND_URL).mock(side_effect=[pair, pair, OK])
    await _client(router, sleeps).send(TO, g.Text(body="hi"))
    assert sleeps.waits == [1.0, 4.0]
