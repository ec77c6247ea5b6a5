"""BulkSender against the real loopback mock: shape, order, exactly-once, rate and concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import resource
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from aiolimiter import AsyncLimiter

import gupshup_async as g
from gupshup_async._pacing import MIN_RATE_FACTOR, Pacer
from gupshup_async.mock import FaultPlan, MockGupshupApp, MockGupshupServer, mock_transport


def numbers(n: int, prefix: str = "91") -> list[str]:
    return [f"{prefix}{i:010d}" for i in range(n)]


async def _no_sleep(seconds: float) -> None:
    return None


def _client(server: MockGupshupServer, **kwargs: object) -> g.AsyncGupshupClient:
    return g.AsyncGupshupClient(
        server.app_id,
        server.token,
        base_url=server.base_url,
        **kwargs,  # type: ignore[arg-type]
    )


def max_in_any_window(arrivals: list[float], window: float = 1.0) -> int:
    arrivals = sorted(arrivals)
    best, start = 0, 0
    for end, t in enumerate(arrivals):
        while t - arrivals[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


FAULT_MIX = {
    "910000000001": ["429", "ok"],
    "910000000002": ["400"],
    "910000000003": ["503", "ok"],
    "910000000004": ["500"],
}


async def test_results_are_in_input_order_with_the_reference_shape_and_exactly_once() -> None:
    recipients = ["910000000000", *FAULT_MIX, "910000000005"]
    async with (
        MockGupshupServer(faults=FaultPlan(schedule=FAULT_MIX)) as server,
        _client(server, retry_policy=g.RetryPolicy(sleep=_no_sleep)) as client,
    ):
        results = await g.BulkSender(client, rate=None, concurrency=3).send(
            recipients, g.Text(body="hi")
        )
        accepted = {m.to: m.id for m in server.recorder.messages}

    assert [r["recipient"] for r in results] == recipients
    assert [r["success"] for r in results] == [True, True, False, True, False, True]
    for result in results:
        if result["success"]:
            assert set(result) == {"recipient", "success", "result"}
            assert result["result"]["messages"][0]["id"] == accepted[result["recipient"]]
        else:
            assert set(result) == {"recipient", "success", "error"}
    assert results[2]["error"] == "HTTP 400: Invalid Destination"  # type: ignore[typeddict-item]
    assert results[4]["error"] == (  # type: ignore[typeddict-item]
        "HTTP 500: Internal Server Error (may have been delivered; not retried)"
    )
    # The mock's counts match the results one for one.
    assert sorted(accepted) == sorted(r["recipient"] for r in results if r["success"])
    assert dict(server.recorder.accepted) == {to: 1 for to in accepted}
    assert dict(server.recorder.attempts) == {
        "910000000000": 1,
        "910000000001": 2,
        "910000000002": 1,
        "910000000003": 2,
        "910000000004": 1,
        "910000000005": 1,
    }


async def test_invalid_and_repeated_recipients_fail_without_a_request(
    mock_server: MockGupshupServer, loopback_client: g.AsyncGupshupClient
) -> None:
    recipients = ["+91 98765 43210", "919876543210", "12", "91-98765-43210", "abc1234567"]
    results = await g.BulkSender(loopback_client, rate=None).send(recipients, g.Text(body="hi"))

    assert [r["success"] for r in results] == [True, False, False, False, False]
    assert "duplicate recipient" in results[1]["error"]  # type: ignore[typeddict-item]
    assert "must have 7-15 digits" in results[2]["error"]  # type: ignore[typeddict-item]
    assert "duplicate recipient" in results[3]["error"]  # type: ignore[typeddict-item]
    assert "only digits" in results[4]["error"]  # type: ignore[typeddict-item]
    assert dict(mock_server.recorder.attempts) == {"919876543210": 1}


async def test_per_recipient_messages_and_a_failing_callable_fails_only_its_recipient(
    mock_server: MockGupshupServer, loopback_client: g.AsyncGupshupClient
) -> None:
    def message_for(to: str) -> g.Message:
        if to.endswith("3"):
            raise KeyError("no template for this customer")
        if to.endswith("2"):
            return g.Image(link=f"https://cdn.example/{to}.png")
        return g.Text(body=f"Hello {to}")

    recipients = ["910000000001", "910000000002", "910000000003"]
    results = await g.BulkSender(loopback_client, rate=None).send(recipients, message_for)

    assert [r["success"] for r in results] == [True, True, False]
    assert "could not be built" in results[2]["error"]  # type: ignore[typeddict-item]
    assert {m.to: m.type for m in mock_server.recorder.messages} == {
        "910000000001": "text",
        "910000000002": "image",
    }


async def test_ambiguous_outcome_is_a_failure_that_says_so_and_is_not_retried() -> None:
    plan = FaultPlan(schedule={"910000000001": ["drop_after"]})
    async with MockGupshupServer(faults=plan) as server, _client(server, max_retries=5) as client:
        outcomes = [
            o
            async for o in g.BulkSender(client, rate=None).outcomes(
                ["910000000001"], g.Text(body="x")
            )
        ]
        assert server.recorder.attempts["910000000001"] == 1
        assert server.recorder.accepted["910000000001"] == 1
    [outcome] = outcomes
    assert outcome.status == "ambiguous"
    assert outcome.result["success"] is False
    assert "may have been delivered" in outcome.result["error"]


async def test_rate_bound_measured_at_the_server() -> None:
    n, rate = 700, 200.0
    async with MockGupshupServer() as server, _client(server) as client:
        sender = g.BulkSender(client, rate=rate, concurrency=32)
        assert sender.burst == 20
        started = time.monotonic()
        results = await sender.send(numbers(n), g.Text(body="hi"))
        elapsed = time.monotonic() - started
        arrivals = [m.arrival for m in server.recorder.messages]
    assert all(r["success"] for r in results)
    assert len(arrivals) == n
    assert max_in_any_window(arrivals) <= 240  # rate + burst = 220, plus network jitter
    assert elapsed >= (n - sender.burst) / rate * 0.95  # the time the rate implies


async def test_concurrency_bound_measured_at_the_server() -> None:
    async with (
        MockGupshupServer(faults=FaultPlan(latency=0.05)) as server,
        _client(server) as client,
    ):
        results = await g.BulkSender(client, rate=None, concurrency=8).send(
            numbers(80), g.Text(body="hi")
        )
        assert server.recorder.max_in_flight == 8
    assert sum(r["success"] for r in results) == 80


async def test_shared_limiter_bounds_two_senders_together() -> None:
    async with MockGupshupServer() as server, _client(server) as client:
        limiter = AsyncLimiter(10, 10 / 100)  # 100/s with bursts of 10, for both
        first = g.BulkSender(client, limiter=limiter, concurrency=16)
        second = g.BulkSender(client, limiter=limiter, concurrency=16)
        started = time.monotonic()
        await asyncio.gather(
            first.send(numbers(150, "91"), g.Text(body="a")),
            second.send(numbers(150, "92"), g.Text(body="b")),
        )
        elapsed = time.monotonic() - started
        arrivals = [m.arrival for m in server.recorder.messages]
    assert len(arrivals) == 300
    assert elapsed >= (300 - 10) / 100 * 0.95
    assert max_in_any_window(arrivals) <= 130


async def test_throttling_slows_the_whole_sender_and_reports_it() -> None:
    async with (
        MockGupshupServer(rate=60, burst=6) as server,
        _client(
            server,
            retry_policy=g.RetryPolicy(max_retries=20, backoff_initial=0.05, backoff_max=0.5),
        ) as client,
    ):
        sender = g.BulkSender(client, rate=200, concurrency=16)
        results = await sender.send(numbers(240), g.Text(body="hi"))
        assert server.recorder.total_accepted == 240
    assert all(r["success"] for r in results)
    assert sender.rate_cuts >= 1
    assert sender.lowest_rate is not None
    assert sender.lowest_rate <= 100


def test_throttle_pauses_on_retry_after_and_halves_on_repeats_at_most_once_a_second() -> None:
    now = [100.0]
    throttle = Pacer(None, lambda: now[0], rate=None)
    throttle.throttled(pause=2.0)
    assert throttle.paused_until == 102.0
    assert (throttle.factor, throttle.cuts) == (1.0, 0)  # a lone 429 only pauses
    now[0] = 100.5
    throttle.throttled(pause=None)
    assert (throttle.factor, throttle.cuts) == (0.5, 1)
    now[0] = 100.9
    throttle.throttled(pause=None)
    assert (throttle.factor, throttle.cuts) == (0.5, 1)  # not twice within a second
    now[0] = 101.5
    throttle.throttled(pause=None)
    assert (throttle.factor, throttle.cuts) == (0.25, 2)
    now[0] = 103.5  # two quiet seconds: +0.25 after the first
    assert throttle.current_factor() == pytest.approx(0.5)
    now[0] = 200.0
    assert throttle.current_factor() == 1.0
    for step in range(20):
        now[0] = 300.0 + step * 0.6
        throttle.throttled(pause=None)
    assert throttle.factor == MIN_RATE_FACTOR


@pytest.mark.parametrize("call", ["send", "run"])
async def test_cancelling_lets_in_flight_sends_finish_and_keeps_their_results(call: str) -> None:
    plan = FaultPlan(latency=0.5)
    seen: list[g.Outcome] = []
    async with MockGupshupServer(faults=plan) as server, _client(server) as client:
        sender = g.BulkSender(client, rate=None, concurrency=4, on_result=seen.append)
        method = sender.send if call == "send" else sender.run
        task = asyncio.create_task(method(numbers(100), g.Text(body="hi")))
        await asyncio.sleep(0.2)  # four requests are in flight at the mock
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.recorder.total_attempts == 4
        assert server.recorder.total_accepted == 4
    assert sorted(o.status for o in seen) == ["sent"] * 4
    assert {o.digits for o in seen} == {m.to for m in server.recorder.messages}


async def test_async_iterable_recipients_are_consumed_lazily(
    mock_server: MockGupshupServer, loopback_client: g.AsyncGupshupClient
) -> None:
    pulled = 0

    async def recipients() -> AsyncIterator[str]:
        nonlocal pulled
        for to in numbers(50):
            pulled += 1
            yield to

    sender = g.BulkSender(loopback_client, rate=None, concurrency=2)
    stream = sender.stream(recipients(), g.Text(body="hi"))
    first = await anext(stream)
    assert first["success"] is True
    assert pulled <= 2 * 2 + 2 + 1  # slots + workers + the feeder's hand: never the whole list
    rest = [r async for r in stream]
    assert len(rest) == 49
    assert mock_server.recorder.total_accepted == 50


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "rate must be a positive"),
        ({"rate": float("inf")}, "rate must be a positive"),
        ({"concurrency": 0}, "concurrency must be >= 1"),
        ({"burst": 0}, "burst must be >= 1"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    client = g.AsyncGupshupClient("app", "tok")
    with pytest.raises(ValueError, match=message):
        g.BulkSender(client, **kwargs)  # type: ignore[arg-type]


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_100k_recipients_stream_in_bounded_memory() -> None:
    app = MockGupshupApp(token="t")
    app.recorder.keep_messages = False

    def recipients() -> Iterator[str]:
        for i in range(100_000):
            yield f"91{i:010d}"

    gc.collect()
    before = _rss_mb()
    peak = before
    count = successes = 0
    http = httpx.AsyncClient(transport=mock_transport(app), base_url="https://mock")
    async with (
        http,
        g.AsyncGupshupClient("app", "t", base_url="https://mock", http_client=http) as client,
    ):
        async for result in g.BulkSender(client, rate=None, concurrency=64).stream(
            recipients(), g.Text(body="hi")
        ):
            count += 1
            successes += result["success"]
            if count % 10_000 == 0:
                peak = max(peak, _rss_mb())
    assert (count, successes) == (100_000, 100_000)
    assert app.recorder.total_accepted == 100_000
    # Loose: the dedup set and the mock's per-recipient counters grow; results do not pile up.
    assert peak - before < 100


async def test_leaving_a_stream_early_stops_it_and_in_flight_sends_still_finish() -> None:
    seen: list[g.Outcome] = []
    async with (
        MockGupshupServer(faults=FaultPlan(latency=0.2)) as server,
        _client(server) as client,
    ):
        sender = g.BulkSender(client, rate=None, concurrency=4, on_result=seen.append)
        async with contextlib.aclosing(sender.stream(numbers(100), g.Text(body="hi"))) as results:
            async for _ in results:
                break
        attempts = server.recorder.total_attempts
        await asyncio.sleep(0.5)  # nothing more starts after the stream is closed
        assert server.recorder.total_attempts == attempts
        assert attempts <= 8
        assert server.recorder.total_accepted == attempts
    assert [o.status for o in seen] == ["sent"] * attempts


async def test_a_failing_bucket_fails_the_waiting_workers_instead_of_hanging() -> None:
    class BrokenLimiter(AsyncLimiter):
        async def acquire(self, amount: float = 1) -> None:
            raise RuntimeError("bucket broke")

    pacer = Pacer(BrokenLimiter(10, 1), time.monotonic, rate=10)
    with pytest.raises(RuntimeError, match="bucket broke"):
        await asyncio.wait_for(pacer.admit(), timeout=5)


async def test_bulk_attempts_reach_the_clients_attempt_hook() -> None:
    plan = FaultPlan(schedule={"910000000001": ["429_after", "ok"]}, retry_after=0.1)
    events: list[g.AttemptEvent] = []
    async with (
        MockGupshupServer(faults=plan) as server,
        _client(server, on_attempt=events.append) as client,
    ):
        await g.BulkSender(client, rate=None).send(["910000000001"], g.Text(body="hi"))
    assert [(e.attempt, e.status_code, e.retry_in) for e in events] == [
        (1, 429, 0.1),
        (2, 200, None),
    ]
    assert all(e.recipient == "91********01" for e in events)


async def _until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Poll a count kept by someone else (the mock, a transport) until `condition` holds."""
    give_up = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < give_up, "the condition never held"
        await asyncio.sleep(0.01)


async def test_concurrent_runs_on_one_sender_all_finish_and_share_its_rate() -> None:
    async with MockGupshupServer() as server, _client(server) as client:
        sender = g.BulkSender(client, rate=100, burst=10, concurrency=16)
        first, second = await asyncio.wait_for(
            asyncio.gather(
                sender.send(numbers(50, "92"), g.Text(body="a")),
                sender.send(numbers(200, "93"), g.Text(body="b")),
            ),
            timeout=30,
        )
        arrivals = [m.arrival for m in server.recorder.messages]
    assert [len(first), len(second)] == [50, 200]
    assert all(r["success"] for r in first + second)
    assert len(arrivals) == 250
    assert max_in_any_window(arrivals) <= 100 + 10


async def test_stopping_the_pacer_releases_its_waiters_instead_of_leaving_them_hanging() -> None:
    pacer = Pacer(AsyncLimiter(1, 10), time.monotonic, rate=0.1)
    first = asyncio.ensure_future(pacer.admit())
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(pacer.admit())  # the bucket is empty now: it waits
    await asyncio.wait_for(first, timeout=5)
    await asyncio.sleep(0.05)
    pacer.close()  # a BaseException (CancelledError) ends the pacer's task
    with pytest.raises(RuntimeError, match="pacer was stopped"):
        await asyncio.wait_for(waiting, timeout=5)


async def test_a_stop_while_waiting_for_a_retry_reports_not_sent_never_ambiguous() -> None:
    """10.3: cancelled in the Retry-After pause (inside admit) or in a backoff sleep."""
    schedule = {
        "910000000001": ["429_after", "ok"],  # waits in the shared pause, in admit()
        "910000000002": ["503", "ok"],  # waits in its backoff sleep
    }
    seen: list[g.Outcome] = []
    policy = g.RetryPolicy(backoff_initial=30.0, backoff_max=30.0, random=lambda: 1.0)
    async with (
        MockGupshupServer(faults=FaultPlan(schedule=schedule, retry_after=30.0)) as server,
        _client(server, retry_policy=policy) as client,
    ):
        sender = g.BulkSender(client, rate=50, concurrency=2, on_result=seen.append)
        run = asyncio.create_task(sender.send(list(schedule), g.Text(body="hi")))
        await _until(lambda: server.recorder.total_attempts >= 2)
        await asyncio.sleep(0.1)  # both answers are in; both recipients wait
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 5)
        assert server.recorder.total_accepted == 0
    assert sorted((o.digits, o.status, o.attempts) for o in seen) == [
        ("910000000001", "not_sent", 1),
        ("910000000002", "not_sent", 1),
    ]
    assert all("not delivered" in str(o.result.get("error", "")) for o in seen)


def _pair_rate_transport(limited: str, times: int, arrivals: list[str]) -> httpx.MockTransport:
    """Success for all, but `limited` gets the pair-rate error (131056) `times` times."""
    left = [times]

    def answer(request: httpx.Request) -> httpx.Response:
        to = json.loads(request.content)["to"]
        arrivals.append(to)
        if to == limited and left[0] > 0:
            left[0] -= 1
            error = {"message": "(#131056) pair rate limit hit", "code": 131056}
            return httpx.Response(400, json={"error": error})
        return httpx.Response(200, json={"messages": [{"id": f"gs-{to}"}]})

    return httpx.MockTransport(answer)


async def test_pair_rate_backs_off_that_recipient_only_and_never_cuts_the_shared_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """10.8: 131056 waits 4**n s for its recipient; the others go on at full rate."""
    caplog.set_level(logging.WARNING)
    recipients = numbers(40)
    limited = recipients[0]
    arrivals: list[str] = []
    waits: list[float] = []
    release = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await release.wait()  # the limited recipient waits until everyone else is done

    async with (
        httpx.AsyncClient(transport=_pair_rate_transport(limited, 2, arrivals)) as http,
        g.AsyncGupshupClient(
            "app",
            "tok",
            base_url="https://mock",
            http_client=http,
            retry_policy=g.RetryPolicy(max_retries=3, sleep=sleep),
        ) as client,
    ):
        sender = g.BulkSender(client, rate=None, concurrency=4)
        run = asyncio.create_task(sender.send(recipients, g.Text(body="hi")))
        await _until(lambda: len(arrivals) >= 1 + 39)
        assert arrivals.count(limited) == 1  # still backing off; 39 others were sent
        release.set()
        results = await asyncio.wait_for(run, 5)
    assert all(r["success"] for r in results)
    assert arrivals.count(limited) == 3
    assert waits == [1.0, 4.0]
    assert (sender.rate_cuts, sender.throttled) == (0, 2)
    assert caplog.records == []


async def test_throttling_is_counted_and_shown_as_a_rate_not_logged_as_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with (
        MockGupshupServer(rate=60, burst=6) as server,
        _client(
            server,
            retry_policy=g.RetryPolicy(max_retries=20, backoff_initial=0.05, backoff_max=0.5),
        ) as client,
    ):
        sender = g.BulkSender(client, rate=200, concurrency=16)
        assert sender.current_rate == 200
        await sender.send(numbers(240), g.Text(body="hi"))
    assert sender.rate_cuts >= 1
    assert sender.throttled >= sender.rate_cuts
    assert sender.current_rate is not None
    assert 0 < sender.current_rate <= 200
    assert [r for r in caplog.records if r.name.startswith("gupshup_async")] == []


async def test_a_stop_while_waiting_for_a_bucket_token_before_a_retry_reports_not_sent() -> None:
    """10.3, third wait: no pause, no backoff left, but the bucket has no token yet."""
    seen: list[g.Outcome] = []
    plan = FaultPlan(schedule={"910000000001": ["503", "ok"]})
    async with (
        MockGupshupServer(faults=plan) as server,
        _client(server, retry_policy=g.RetryPolicy(sleep=_no_sleep)) as client,
    ):
        sender = g.BulkSender(client, rate=1, concurrency=1, on_result=seen.append)
        run = asyncio.create_task(sender.send(["910000000001"], g.Text(body="hi")))
        await _until(lambda: server.recorder.total_attempts >= 1)
        await asyncio.sleep(0.2)  # the retry now waits about a second for its token
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 5)
        assert server.recorder.total_attempts == 1
    assert [(o.digits, o.status, o.attempts) for o in seen] == [("910000000001", "not_sent", 1)]


async def test_run_keeps_nothing_and_hands_every_outcome_to_on_result_exactly_once() -> None:
    recipients = ["910000000000", *FAULT_MIX, "910000000005", "91 0000000000", "12"]
    seen: list[g.Outcome] = []
    async with (
        MockGupshupServer(faults=FaultPlan(schedule=FAULT_MIX)) as server,
        _client(server, retry_policy=g.RetryPolicy(sleep=_no_sleep)) as client,
    ):
        sender = g.BulkSender(client, rate=None, concurrency=3, on_result=seen.append)
        await sender.run(recipients, g.Text(body="hi"))  # returns None: nothing is kept
        accepted = dict(server.recorder.accepted)

    assert sorted(o.index for o in seen) == list(range(len(recipients)))
    by_index = {o.index: o.status for o in seen}
    assert [by_index[i] for i in range(len(recipients))] == [
        "sent", "sent", "failed", "sent", "ambiguous", "sent", "duplicate", "invalid",
    ]  # fmt: skip
    assert accepted == {to: 1 for to in ("910000000000", "910000000001", "910000000003",
                                         "910000000005")}  # fmt: skip


async def test_run_until_stops_drawing_lets_in_flight_sends_finish_and_returns() -> None:
    plan = FaultPlan(latency=0.3)
    seen: list[g.Outcome] = []
    async with MockGupshupServer(faults=plan) as server, _client(server) as client:
        sender = g.BulkSender(client, rate=None, concurrency=4, on_result=seen.append)
        await sender.run(numbers(100), g.Text(body="hi"), until=lambda: len(seen) >= 5)
        accepted = server.recorder.total_accepted
    # The 5th result stops the run: the three other sends then in flight finish and are
    # reported; nothing else is drawn, and run() returns normally.
    assert accepted == 8
    assert [o.status for o in seen] == ["sent"] * 8
    assert sorted(o.index for o in seen) == list(range(8))
