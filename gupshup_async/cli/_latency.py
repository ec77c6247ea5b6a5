"""Latency percentiles in constant memory: a log-scale histogram instead of every sample.

A million sends would otherwise keep a million floats (and sort a copy) just to print p99.
Buckets grow by 2% from 0.1 ms, so a percentile is within 2% of the exact value.
"""

from __future__ import annotations

import math

_SMALLEST = 1e-4  # seconds: everything below shares the first bucket
_GROWTH = 1.02
_BUCKETS = 1200  # 0.1 ms * 1.02**1200 is about 2 hours


class LatencyHistogram:
    """Counts of latencies (seconds) in log-spaced buckets; percentiles from the counts."""

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.total = 0

    def add(self, seconds: float) -> None:
        """Count one latency."""
        if seconds <= _SMALLEST:
            bucket = 0
        else:
            bucket = min(_BUCKETS - 1, 1 + int(math.log(seconds / _SMALLEST, _GROWTH)))
        self.counts[bucket] += 1
        self.total += 1

    def percentile(self, q: float) -> float | None:
        """The latency below which `q` percent of the samples fall (upper bucket edge)."""
        if not self.total:
            return None
        rank = max(1, math.ceil(q / 100 * self.total))
        seen = 0
        for bucket, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return _SMALLEST * _GROWTH**bucket
        return _SMALLEST * _GROWTH ** (_BUCKETS - 1)
