from __future__ import annotations

import random

import pytest

from gupshup_async.cli._latency import LatencyHistogram


def test_percentiles_are_within_two_percent_of_the_exact_ones() -> None:
    rng = random.Random(3)
    samples = [rng.lognormvariate(-5, 1.2) for _ in range(20_000)]
    histogram = LatencyHistogram()
    for sample in samples:
        histogram.add(sample)
    ordered = sorted(samples)
    for q in (50, 95, 99):
        exact = ordered[int(q / 100 * len(ordered)) - 1]
        assert histogram.percentile(q) == pytest.approx(exact, rel=0.021)


def test_empty_and_tiny_values() -> None:
    histogram = LatencyHistogram()
    assert histogram.percentile(50) is None
    histogram.add(0.0)
    assert histogram.percentile(99) == pytest.approx(1e-4)
