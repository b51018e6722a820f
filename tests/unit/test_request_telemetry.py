"""Bounded request telemetry: the per-function trace budget and durations aggregated in place."""

from __future__ import annotations

import itertools
import random
import threading

import numpy as np
import pytest

from devhost.request_sampling import RequestSampler, Samplers
from shared.latency_histogram import GROWTH, LatencyHistogram


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_function_has_every_invocation_traced_at_full_rate():
    clock = Clock()
    sampler = RequestSampler(per_second=5, clock=clock)
    rates = []
    for _ in range(20):
        clock.now += 0.5
        rates.append(sampler.decide())
    assert rates == [100.0] * 20 and sampler.not_traced == 0


def test_a_flood_is_traced_within_budget_and_the_rates_count_every_invocation():
    clock = Clock()
    sampler = RequestSampler(per_second=5, clock=clock)
    rates = []
    for _ in range(10_000):  # 10,000 invocations in 10 s
        clock.now += 0.001
        rates.append(sampler.decide())
    traced = [r for r in rates if r]
    assert 50 <= len(traced) <= 56  # 5 a second, and a first burst of up to 5
    last = max(i for i, r in enumerate(rates) if r)
    assert sum(100 / r for r in traced) == pytest.approx(last + 1)  # each stands for those left out before it
    assert sampler.not_traced == 10_000 - len(traced)


def test_a_fixed_share_is_spread_evenly():
    sampler = RequestSampler(percentage=10)
    rates = [sampler.decide() for _ in range(1000)]
    traced = [i for i, r in enumerate(rates) if r]
    assert len(traced) == 100 and {rates[i] for i in traced} == {10.0}
    assert {b - a for a, b in itertools.pairwise(traced)} == {10}


def test_a_zero_budget_traces_nothing_and_functions_have_their_own_budgets():
    assert not any(RequestSampler(per_second=0).decide() for _ in range(100))
    samplers = Samplers(per_second=1)
    assert [samplers.decide("score") for _ in range(3)] == [100.0, 0.0, 0.0]
    assert samplers.decide("promote") == 100.0  # a flood of scoring does not use up the promotion's budget
    assert samplers.not_traced() == {"score": 2, "promote": 0}
    assert Samplers.from_env({"TELEMETRY_SAMPLING_RATIO": "0.25"}).decide("f") == 0.0  # a fixed 25%
    with pytest.raises(ValueError):
        RequestSampler(percentage=150)


def test_percentiles_are_within_one_bucket_of_the_exact_ones():
    values = np.random.default_rng(7).lognormal(mean=0.0, sigma=1.0, size=20_000)  # ms, long-tailed
    histogram = LatencyHistogram()
    key = (("function", "score"),)
    for value in values:
        histogram.record(float(value), key)
    summary = histogram.drain()[key]
    assert summary.count == 20_000 and summary.max == pytest.approx(values.max())
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        exact = float(np.percentile(values, q))
        assert exact / GROWTH <= summary.statistic(name) <= exact * GROWTH ** 2, name


def test_a_drain_starts_a_new_window_and_the_total_keeps_counting():
    histogram = LatencyHistogram()
    a, b = (("model", "a"),), (("model", "b"),)
    histogram.record(2.0, a)
    histogram.record(0.001, b)  # below the smallest bucket
    histogram.record(10_000_000.0, b)  # beyond the largest
    first = histogram.drain()
    assert first[a].count == 1 and first[a].p50 == pytest.approx(2.0, rel=0.04) and first[b].max == 10_000_000.0
    assert histogram.drain() == {}  # nothing new: no window to report
    histogram.record(3.0, a)
    assert histogram.drain()[a].count == 1 and histogram.totals() == {a: 2, b: 2}


def test_values_recorded_from_many_threads_are_all_counted():
    histogram = LatencyHistogram()
    key = (("function", "f"),)

    def work() -> None:
        for _ in range(5000):
            histogram.record(random.random() * 10, key)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert histogram.totals()[key] == 40_000 and histogram.drain()[key].count == 40_000
