"""What every benchmark shares: the mock in its own pinned process, pinning, RSS, windows."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MOCK_CORE = 1
CLIENT_CORE = 0


def can_pin() -> bool:
    """taskset exists and there are at least two cores to keep client and mock apart."""
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(command: Sequence[str], core: int) -> list[str]:
    """`command` under `taskset -c core` when pinning works, else as it is."""
    return ["taskset", "-c", str(core), *command] if can_pin() else list(command)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mock_process(*extra: str) -> Iterator[str]:
    """The project's mock in a separate uvicorn process pinned to its own core; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "gupshup_async", "mock", "--port", str(port), *extra]
    process = subprocess.Popen(
        pinned(command, MOCK_CORE), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                get(base_url, "/_mock/stats?summary=1")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the mock did not start") from None
                time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=15)


def run_worker(module: str, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    """Run `python -m module args` pinned to the client core; its last line is a JSON result.

    `cwd` runs it in another checkout (`-m` imports from the working directory first), so an
    older commit's code is measured in the same run as this one.
    """
    command = pinned([sys.executable, "-m", module, *args], CLIENT_CORE)
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def get(base_url: str, path: str) -> Any:
    with urllib.request.urlopen(base_url + path, timeout=30) as answer:
        return json.load(answer)


def post(base_url: str, path: str) -> Any:
    request = urllib.request.Request(base_url + path, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident memory of this process, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mb()


def max_in_window(arrivals: Sequence[float], window: float = 1.0) -> int:
    """The largest number of arrivals in any sliding window of `window` seconds."""
    ordered = sorted(arrivals)
    best = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("gupshup-async", "httpx", "httpx-aiohttp", "aiohttp", "uvicorn", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "pinned": can_pin(),
        "versions": versions,
    }


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
