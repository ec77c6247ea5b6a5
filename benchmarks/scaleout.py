"""Scale-out on Postgres: K `gupshup-async worker` processes share many apps' campaigns.

For K = 1, 2, 4: a fresh database; K workers started, then APPS campaigns (one per app,
PER_APP recipients each, paced at RATE msg/s) enqueued; at about 40% of the run one worker is
SIGKILLed and the others (for K = 1, a standby that joined once every app was taken) take its
apps over. The mock serves every app id with a bucket of its own, 25% above the campaigns'
rate. Figures, counted at the mock and in the database:

- every app's largest 1 s window of arrivals against `rate + burst`;
- duplicates (a recipient accepted twice) and lost (a recipient without a final state);
- ambiguous (what the killed worker had on the wire);
- failover: from the kill to the first arrival for an app the killed worker held;
- aggregate msg/s (accepted / span of arrivals) and the workers' CPU per message;
- journal commits per second and per message (the Postgres write rate).

    python -m benchmarks.scaleout             # short: 10 apps x 300 at 40 msg/s, lease 3 s
    python -m benchmarks.scaleout --apps 20 --per-app 800 --rate 80 --lease 5

Postgres: $GUPSHUP_DATABASE_URL's server when set, else a throwaway cluster (scripts/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from benchmarks._harness import RESULTS, ROOT, machine, max_in_window
from gupshup_async.journal.postgres import CampaignSpec, PostgresStore
from gupshup_async.mock import MockGupshupApp, MockGupshupServer

TOKEN_VAR = "SCALEOUT_BENCH_TOKEN"
#: Every worker started, so none outlives the benchmark when a run fails half-way.
_STARTED: list[subprocess.Popen[bytes]] = []


def _app(k: int) -> str:
    return f"bench-app-{k:03d}"


def _number(k: int, i: int) -> str:
    return f"91{k:03d}{i:07d}"


def _app_of(number: str) -> str:
    return _app(int(number[2:5]))


@contextmanager
def postgres() -> Iterator[str]:
    """A server URL: $GUPSHUP_DATABASE_URL, or a throwaway cluster for this run."""
    given = os.environ.get("GUPSHUP_DATABASE_URL")
    if given:
        yield given
        return
    where = tempfile.mkdtemp(prefix="gupshup-bench-pg-")
    script = str(ROOT / "scripts" / "postgres")
    try:
        started = subprocess.run(
            ["bash", script, "start", where], capture_output=True, text=True, check=True
        )
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", script, "stop", where], capture_output=True, check=False)
        shutil.rmtree(where, ignore_errors=True)


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"scaleout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(server)
    try:
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def _enqueue(
    url: str, base_url: str, args: argparse.Namespace, *, rate: float | None = -1.0
) -> None:
    async with await PostgresStore.connect(url) as store:
        await store.ensure_schema()
        for k in range(args.apps):
            spec = CampaignSpec(
                app_id=_app(k),
                message={"type": "text", "text": {"body": "Sale starts now"}},
                token_env=TOKEN_VAR,
                base_url=base_url,
                rate=args.rate if rate == -1.0 else rate,
                burst=None,
                concurrency=args.concurrency,
                timeout=10.0,
                max_retries=5,
                message_sha256="bench",
                recipients_sha256=f"bench-{k}",
            )
            await store.enqueue(spec, (_number(k, i) for i in range(args.per_app)))


def _worker(
    url: str, name: str, lease: float, env: dict[str, str], tick: float = 0.01
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gupshup_async", "worker", "--journal", url]
    command += ["--lease", str(lease), "--name", name, "--tick", str(tick)]
    log = open(os.path.join(tempfile.gettempdir(), f"scaleout-{name}.log"), "ab")  # noqa: SIM115
    with log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    _STARTED.append(process)
    return process


class PostgresStoreSync:
    """Schema creation from sync code (the benchmark's driver is not async)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> PostgresStoreSync:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def ensure_schema(self) -> None:
        async def create() -> None:
            async with await PostgresStore.connect(self.url) as store:
                await store.ensure_schema()

        asyncio.run(create())


def _wait_for(url: str, query: str, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as db:
        while True:
            row = db.execute(query).fetchone()
            if row is not None and int(row[0]) >= expected:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {query}")
            time.sleep(0.2)


def _commits(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def startup_cpu(server: str) -> float:
    """CPU seconds of one worker that starts, finds nothing to do and exits (imports, connect)."""
    with fresh_database(server) as url:
        with PostgresStoreSync(url) as db:
            db.ensure_schema()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        idle = _worker(url, "idle", 3.0, dict(os.environ))
        _wait_for(url, "SELECT count(*) FROM gupshup_workers", 1)
        idle.send_signal(signal.SIGTERM)
        idle.wait(timeout=120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def run_k(
    server: str, k_workers: int, args: argparse.Namespace, start_cpu: float
) -> dict[str, Any]:
    """One measured run with `k_workers` workers and one SIGKILL; its figures."""
    mock = MockGupshupServer()
    burst = max(1.0, args.rate / 10)
    # Each app's limit at the mock sits 25% above the rate its campaign is sent at (as one
    # would configure a client below the app's tier): a throttled client halves its rate, and
    # scheduling jitter on a loaded machine would otherwise make that measure the mock.
    mock.app = MockGupshupApp(
        token=mock.token,
        rate=args.rate * 1.25,
        burst=args.rate / 4,
        recorder=mock.recorder,
        bucket_per_app=True,
    )
    mock.start()
    total = args.apps * args.per_app
    try:
        with fresh_database(server) as url:
            with PostgresStoreSync(url) as db:
                db.ensure_schema()
            env = {**os.environ, TOKEN_VAR: mock.token}
            commits_before = _commits(url)
            cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            # Workers run before campaigns arrive (as deployed): they share the apps from the start.
            workers = [_worker(url, f"w{i}", args.lease, env) for i in range(k_workers)]
            _wait_for(url, "SELECT count(*) FROM gupshup_workers", k_workers)
            started = time.monotonic()
            asyncio.run(_enqueue(url, mock.base_url, args))
            _wait_for(url, "SELECT count(worker) FROM gupshup_app_leases", args.apps)
            if k_workers == 1:
                # A standby joins once every app is taken (a late joiner takes nothing from a
                # live worker), so the failover measures the lease, not a Python start-up.
                # With K > 1 the surviving workers take the killed one's apps.
                workers.append(_worker(url, "standby", args.lease, env))
                _wait_for(url, "SELECT count(*) FROM gupshup_workers", k_workers + 1)
            while mock.recorder.total_accepted < 0.4 * total:
                time.sleep(0.05)  # cheap: the mock shares this process
            with psycopg.connect(url) as db:
                held = {
                    row[0]
                    for row in db.execute(
                        "SELECT app_id FROM gupshup_app_leases WHERE worker LIKE 'w0-%'"
                    )
                }
            before_kill = mock.recorder.total_accepted
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            killed = time.monotonic()
            _wait_for(
                url,
                "SELECT count(*) FROM gupshup_campaigns WHERE status <> 'ready'",
                args.apps,
            )
            done = time.monotonic()
            for process in workers[1:]:  # the first one was killed
                process.send_signal(signal.SIGTERM)
            for process in workers:
                process.wait(timeout=120)
            elapsed = done - started
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            commits = _commits(url) - commits_before
            with psycopg.connect(url) as db:
                states = Counter(
                    dict(db.execute("SELECT state, count(*) FROM gupshup_recipients GROUP BY 1"))
                )
    finally:
        mock.stop()
    messages = list(mock.recorder.messages)
    accepted = Counter(m.to for m in messages)
    per_app: dict[str, list[float]] = {}
    for m in messages:
        per_app.setdefault(_app_of(m.to), []).append(m.arrival)
    windows = {app: max_in_window(times) for app, times in per_app.items()}
    after_kill = [m.arrival for m in messages if _app_of(m.to) in held and m.arrival > killed]
    first = min(m.arrival for m in messages)
    span = max(m.arrival for m in messages) - first
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    cpu -= (k_workers + 1) * start_cpu  # start-up is not per message
    final = sum(n for state, n in states.items() if state in ("sent", "failed", "ambiguous"))
    timeline = {
        app: (round(min(times) - started, 1), round(max(times) - started, 1))
        for app, times in sorted(per_app.items())
    }
    return {
        "timeline": timeline,
        "killed_at": round(killed - started, 1),
        "killed_wall": time.strftime(
            "%H:%M:%S", time.localtime(time.time() - (time.monotonic() - killed))
        ),
        "held": sorted(held),
        "workers": k_workers,
        "apps": args.apps,
        "recipients": total,
        "accepted": len(messages),
        "duplicates": sum(1 for n in accepted.values() if n > 1),
        "lost": total - final,
        "states": dict(states),
        "ambiguous": states.get("ambiguous", 0),
        "apps_held_by_killed_worker": len(held),
        "failover_s": round(min(after_kill) - killed, 2) if after_kill else None,
        "largest_window": max(windows.values()),
        "window_bound": args.rate + burst,  # the campaign's rate + burst
        "apps_over_bound": sum(1 for n in windows.values() if n > args.rate + burst),
        "throttled_429": mock.recorder.total_attempts - len(messages),
        "msg_per_s": round(len(messages) / span, 1),
        "msg_per_s_before_kill": round(before_kill / (killed - first), 1),
        "wall_s": round(elapsed, 1),
        "cpu_us_per_msg": round(cpu / max(1, len(messages)) * 1e6),
        "commits": commits,
        "commits_per_s": round(commits / elapsed, 1),
        "commits_per_msg": round(commits / max(1, len(messages)), 3),
    }


def pacing_cost(
    server: str, args: argparse.Namespace, start_cpu: float, *, rate: float | None, tick: float
) -> dict[str, Any]:
    """One worker hosting every app, no kill: CPU per message paced (with or without the shared
    tick) or unlimited (`rate=None`)."""
    mock = MockGupshupServer(keep_messages=False)
    mock.app = MockGupshupApp(token=mock.token, recorder=mock.recorder)  # any app id, no limit
    mock.start()
    try:
        with fresh_database(server) as url:
            with PostgresStoreSync(url) as db:
                db.ensure_schema()
            env = {**os.environ, TOKEN_VAR: mock.token}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            worker = _worker(url, "cost", args.lease, env, tick)
            _wait_for(url, "SELECT count(*) FROM gupshup_workers", 1)
            started = time.monotonic()
            asyncio.run(_enqueue(url, mock.base_url, args, rate=rate))
            _wait_for(
                url, "SELECT count(*) FROM gupshup_campaigns WHERE status <> 'ready'", args.apps
            )
            elapsed = time.monotonic() - started
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=120)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        mock.stop()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) - start_cpu
    sent = mock.recorder.total_accepted
    return {
        "rate_per_app": rate,
        "tick": tick,
        "apps": args.apps,
        "sent": sent,
        "msg_per_s": round(sent / elapsed, 1),
        "cpu_us_per_msg": round(cpu / max(1, sent) * 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--per-app", type=int, default=300)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--pacing-cost",
        action="store_true",
        help="instead: one worker hosting every app, paced (shared tick, then a timer per app) "
        "and unlimited, CPU per message (e.g. --apps 50 --per-app 100 --rate 20)",
    )
    args = parser.parse_args()
    if args.pacing_cost:
        with postgres() as server:
            try:
                start_cpu = startup_cpu(server)
                runs = [
                    pacing_cost(server, args, start_cpu, rate=args.rate, tick=0.01),
                    pacing_cost(server, args, start_cpu, rate=args.rate, tick=0.0),
                    pacing_cost(server, args, start_cpu, rate=None, tick=0.01),
                ]
            finally:
                for process in _STARTED:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
        for run in runs:
            run["vs_unlimited"] = round(run["cpu_us_per_msg"] / runs[-1]["cpu_us_per_msg"], 2)
            print(json.dumps(run), flush=True)
        return
    rows = []
    with postgres() as server:
        try:
            start_cpu = startup_cpu(server)
            print(f"worker start-up and exit: {start_cpu * 1000:.0f} ms CPU (subtracted)")
            for k in args.workers:
                row = run_k(server, k, args, start_cpu)
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            for process in _STARTED:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    print()
    print("| K | msg/s before the kill | msg/s overall | CPU µs/msg | largest 1 s window (bound) "
          "| dup | lost | ambiguous | failover s | xact/s | xact/msg |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['msg_per_s_before_kill']} | {r['msg_per_s']} | "
            f"{r['cpu_us_per_msg']} | "
            f"{r['largest_window']} ({r['window_bound']:g}) | {r['duplicates']} | {r['lost']} | "
            f"{r['ambiguous']} | {r['failover_s']} | {r['commits_per_s']} | "
            f"{r['commits_per_msg']} |"
        )
    if args.workers == [1, 2, 4]:
        RESULTS.mkdir(exist_ok=True)
        out = {"machine": machine(), "args": vars(args), "runs": rows}
        (RESULTS / "scaleout.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
