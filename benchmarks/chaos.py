"""Reliability in figures: a campaign through a storm of faults, then through SIGKILLs.

    python -m benchmarks.chaos              # 20 000 recipients, 10 kills (about 5 minutes)
    python -m benchmarks.chaos --quick      # 3 000 recipients, 4 kills

Both phases run the real console script (`gupshup-async campaign`, journal on) in a subprocess
against the mock in its own process, injecting (seeded): 20% 429 (half with Retry-After),
5% 5xx spread over 500/502/503/504, 1% connections dropped before processing, 1% dropped after,
1% answers slower than the client's timeout, 1% malformed 200s (HTML, truncated JSON, no id).

1. one uninterrupted run;
2. the same campaign (fresh journal, fresh mock) killed with SIGKILL at random moments and
   resumed each time, then run to the end.

Figures come from the mock's own records against the results file and the journal: recipients
with exactly one final result, lost, delivered twice, ambiguous reported vs messages the mock
accepted without the client seeing a success (the faults after processing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import CLIENT_CORE, RESULTS, get, machine, mock_process, pinned, post

SEED = 7
RETRY_AFTER = 0.2
TIMEOUT = 2.0
FAULTS = {
    "429": 0.10,
    "429_after": 0.10,
    "500": 0.0125,
    "502": 0.0125,
    "503": 0.0125,
    "504": 0.0125,
    "drop_before": 0.01,
    "drop_after": 0.01,
    "slow": 0.01,
    "html_200": 0.0034,
    "truncated_json": 0.0033,
    "no_message_id": 0.0033,
}


def _mock_args() -> list[str]:
    args = [
        "--seed",
        str(SEED),
        "--retry-after",
        str(RETRY_AFTER),
        "--slow-seconds",
        str(TIMEOUT * 1.5),
    ]
    for kind, rate in FAULTS.items():
        args += ["--fault", f"{kind}={rate}"]
    return args


def _campaign(folder: Path, base_url: str) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "gupshup_async",
        "campaign",
        str(folder / "recipients.txt"),
        "--text",
        "Your order has shipped.",
        "--rate",
        "1000",
        "--concurrency",
        "64",
        "--timeout",
        str(TIMEOUT),
        "--journal",
        str(folder / "journal.sqlite3"),
        "--results",
        str(folder / "results.jsonl"),
        "--no-progress",
    ]
    return pinned(command, CLIENT_CORE)


def _env(base_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "GUPSHUP_BASE_URL": base_url,
        "GUPSHUP_APP_ID": "mock-app",
        "GUPSHUP_APP_TOKEN": "mock-token",
    }


def _reported_ambiguous(result: dict[str, Any]) -> bool:
    error = result.get("error", "")
    return not result["success"] and ("may have been delivered" in error or "interrupted" in error)


def _figures(folder: Path, base_url: str, numbers: list[str]) -> dict[str, Any]:
    stats = get(base_url, "/_mock/stats")
    accepted = {to: row["accepted"] for to, row in stats["recipients"].items()}
    results = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    by_recipient: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_recipient.setdefault(result["recipient"], []).append(result)
    exactly_one = sum(1 for n in numbers if len(by_recipient.get(n, [])) == 1)
    ambiguous = {r["recipient"] for r in results if _reported_ambiguous(r)}
    succeeded = {r["recipient"] for r in results if r["success"]}
    twice = [n for n in numbers if accepted.get(n, 0) > 1]
    failed = [
        r["recipient"] for r in results if not r["success"] and r["recipient"] not in ambiguous
    ]
    silent_deliveries = [n for n in numbers if accepted.get(n, 0) >= 1 and n not in succeeded]
    return {
        "recipients": len(numbers),
        "exactly_one_final_result": exactly_one,
        "lost": len(numbers) - len(by_recipient),
        "sent": len(succeeded),
        "success_not_accepted_by_mock": sum(1 for n in succeeded if accepted.get(n, 0) != 1),
        "failed_surely_not_delivered": len(failed),
        "of_those_accepted_by_mock": sum(1 for n in failed if accepted.get(n, 0)),
        "delivered_twice": len(twice),
        "delivered_twice_outside_ambiguous": len([n for n in twice if n not in ambiguous]),
        "ambiguous_reported": len(ambiguous),
        "accepted_without_success_seen": len(silent_deliveries),
        "of_those_reported_ambiguous": len([n for n in silent_deliveries if n in ambiguous]),
        "attempts": stats["attempts"],
    }


def run_phase(base_url: str, numbers: list[str], kills: int, rng: random.Random) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "recipients.txt").write_text("\n".join(numbers) + "\n")
        post(base_url, "/_mock/reset")
        started = time.monotonic()
        survived = 0
        for _ in range(kills):
            process = subprocess.Popen(
                _campaign(folder, base_url),
                env=_env(base_url),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.5, 4.0))
            if process.poll() is None:
                process.kill()
                survived += 1
            process.wait()
        final = subprocess.run(
            _campaign(folder, base_url),
            env=_env(base_url),
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
        if final.returncode != 0:
            raise RuntimeError(final.stderr)
        figures = _figures(folder, base_url, numbers)
    figures.update({"kills": survived, "wall_seconds": wall})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--recipients", type=int, default=None)
    parser.add_argument("--kills", type=int, default=None)
    args = parser.parse_args()
    n = args.recipients or (3_000 if args.quick else 20_000)
    kills = args.kills if args.kills is not None else (4 if args.quick else 10)
    numbers = [f"9180{i:08d}" for i in range(n)]
    rng = random.Random(SEED)
    phases = {}
    with mock_process(*_mock_args()) as base_url:
        print("phase 1: uninterrupted ...", file=sys.stderr, flush=True)
        phases["uninterrupted"] = run_phase(base_url, numbers, 0, rng)
        print(f"phase 2: {kills} SIGKILLs ...", file=sys.stderr, flush=True)
        phases[f"{kills} SIGKILLs"] = run_phase(base_url, numbers, kills, rng)
    rows = list(next(iter(phases.values())))
    lines = ["| figure | " + " | ".join(phases) + " |", "|---|" + "---:|" * len(phases)]
    for row in rows:
        values = [phases[p][row] for p in phases]
        lines.append(
            f"| {row} | "
            + " | ".join(f"{v:.0f}" if isinstance(v, float) else str(v) for v in values)
            + " |"
        )
    print("\n".join(lines))
    if args.quick or args.recipients or args.kills is not None:
        return  # a partial run leaves the recorded results alone
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine(),
        "faults": FAULTS,
        "retry_after": RETRY_AFTER,
        "timeout": TIMEOUT,
        "phases": phases,
    }
    (RESULTS / "chaos.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
