"""The benchmark's statistics on synthetic episodes with known answers: coverage, ties, zero widths."""

from __future__ import annotations

import numpy as np
import pytest

from textgym.algorithms.evaluation import Episode, TaskTable
from textgym.algorithms.statistics import (
    bootstrap_intervals,
    compare,
    effective_trials,
    iqm,
    iqm_interval,
    mean_interval,
    minimum_detectable_difference,
    no_spread,
    student_t_quantile,
    success_interval,
    wilson_interval,
)


def clustered(mean: float, concentration: float | None, tasks: int, trials: int, rng: np.random.Generator):
    """Per-task successes out of ``trials`` when task success probabilities are Beta(mean, concentration)
    distributed (``None``: each task always succeeds or always fails, as a deterministic policy)."""
    if concentration is None:
        p = (rng.random(tasks) < mean).astype(float)
    else:
        p = rng.beta(mean * concentration, (1 - mean) * concentration, tasks)
    return rng.binomial(trials, p).astype(float), np.full(tasks, float(trials))


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)  # 10 of 10 is not certain
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    with pytest.raises(ValueError, match="n > 0"):
        wilson_interval(0, 0)


def test_effective_trials_count_repeated_tasks_once_and_independent_trials_in_full() -> None:
    rng = np.random.default_rng(0)
    repeated = np.array([4.0, 0, 4, 4, 0, 4, 0, 0, 4, 4]), np.full(10, 4.0)  # a deterministic policy
    assert effective_trials(*repeated) == pytest.approx(10)
    assert effective_trials(np.full(10, 4.0), np.full(10, 4.0)) == pytest.approx(10)  # no variance: rho = 1
    independent = rng.binomial(4, 0.4, 400).astype(float), np.full(400, 4.0)
    assert 1400 < effective_trials(*independent) <= 1600
    assert effective_trials(np.array([1.0, 0, 1]), np.ones(3)) == 3  # one trial per task


@pytest.mark.parametrize(
    ("mean", "concentration"), [(0.4, 2.0), (0.4, 50.0), (0.1, 2.0), (0.9, None), (0.5, None), (0.03, 5.0)]
)
def test_success_interval_covers_the_true_rate_95_percent_of_the_time(
    mean: float, concentration: float | None
) -> None:
    rng = np.random.default_rng(1)
    hits = [
        low <= mean <= high
        for low, high in (success_interval(*clustered(mean, concentration, 25, 4, rng)) for _ in range(2000))
    ]
    assert 0.915 <= np.mean(hits) <= 0.98  # 10,000 runs each: 0.925 (p = 0.1, clustered) to 0.966


@pytest.mark.parametrize("concentration", [2.0, None])
def test_iqm_interval_covers_the_true_iqm_with_one_seed(concentration: float | None) -> None:
    rng = np.random.default_rng(2)
    means = np.array([0.05, 0.2, 0.35, 0.5, 0.6, 0.8, 0.9, 0.97])
    truth = float(iqm(means[None]))
    hits = []
    for _ in range(300):
        runs = [clustered(m, concentration, 10, 2, rng) for m in means]
        rates = np.array([[s.sum() / t.sum() for s, t in runs]])
        effective = np.array([[effective_trials(s, t) for s, t in runs]])
        low, high = iqm_interval(rates, effective, resamples=1000, rng=rng)
        hits.append(low <= truth <= high)
    assert 0.92 <= np.mean(hits) <= 0.99


def test_identical_policies_have_a_probability_of_improvement_interval_covering_one_half() -> None:
    rng = np.random.default_rng(3)
    covered, distinguishable = [], []
    for _ in range(200):
        probabilities = [rng.beta(1, 1, 10) for _ in range(4)]  # 4 envs x 10 tasks, shared by both
        a = [rng.binomial(2, p) / 2 for p in probabilities]
        b = [rng.binomial(2, p) / 2 for p in probabilities]
        _, overall = compare(a, b, resamples=1000, rng=rng)
        low, high = overall.improvement_interval
        covered.append(low <= 0.5 <= high)
        distinguishable.append(overall.distinguishable)
    assert np.mean(covered) >= 0.9 and distinguishable == [not c for c in covered]


def test_a_better_policy_is_distinguishable() -> None:
    rng = np.random.default_rng(4)
    better = [np.ones(10) for _ in range(3)]
    worse = [rng.binomial(4, 0.3, 10) / 4 for _ in range(3)]
    per_env, overall = compare(better, worse, resamples=500, rng=rng)
    assert overall.distinguishable and overall.improvement > 0.8
    assert overall.difference == pytest.approx(np.mean([1 - w.mean() for w in worse]))
    assert all(c.difference_interval[0] > 0 for c in per_env)


def _episodes(successes: np.ndarray, returns: np.ndarray) -> list[Episode]:
    """``successes[task, trial]`` and ``returns[task, trial]`` as episodes, the task its reset seed."""
    return [
        Episode(float(returns[t, j]), 5, bool(successes[t, j]), 0, seed=t)
        for t in range(successes.shape[0])
        for j in range(successes.shape[1])
    ]


def test_zero_width_intervals_only_without_any_spread() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):  # data with spread: every interval has a width, however few tasks differ
        successes = np.zeros((10, 4), bool)
        successes[rng.integers(10), rng.integers(4)] = True
        table = TaskTable(_episodes(successes, successes * 1.0))
        intervals = bootstrap_intervals(table, resamples=500, rng=rng)
        assert not no_spread(intervals["success_rate"]) and not no_spread(intervals["mean_return"])
        assert not no_spread(success_interval(table.successes, table.trials))
    flat = TaskTable(_episodes(np.ones((10, 4), bool), np.full((10, 4), 0.5)))  # no spread at all
    intervals = bootstrap_intervals(flat, resamples=500)
    assert no_spread(intervals["mean_return"]) and no_spread(intervals["mean_length"])
    assert not no_spread(success_interval(flat.successes, flat.trials))  # a proportion keeps its width
    assert not no_spread(iqm_interval(np.ones((1, 3)), np.full((1, 3), 10.0)))


def test_minimum_detectable_difference() -> None:
    assert minimum_detectable_difference(50) == pytest.approx(0.280, abs=1e-3)
    assert minimum_detectable_difference(500) == pytest.approx(0.0886, abs=1e-3)
    assert minimum_detectable_difference(50, confidence=0.99) > minimum_detectable_difference(50)


def test_student_t_quantiles_and_the_interval_over_seeds() -> None:
    for p, df, expected in [
        (0.975, 1, 12.7062),
        (0.975, 2, 4.3027),
        (0.975, 10, 2.2281),
        (0.995, 1, 63.6567),
    ]:
        assert student_t_quantile(p, df) == pytest.approx(expected, abs=1e-4)
    assert student_t_quantile(0.975, 1e6) == pytest.approx(1.96, abs=1e-3)
    assert mean_interval([0.5]) is None
    low, high = mean_interval([0.2, 0.4, 0.3])
    assert (low + high) / 2 == pytest.approx(0.3) and high - low == pytest.approx(
        2 * 4.3027 * 0.1 / 3**0.5, abs=1e-4
    )
    rng = np.random.default_rng(6)
    covered = [low <= 0 <= high for low, high in (mean_interval(rng.normal(size=3)) for _ in range(2000))]
    assert 0.93 <= np.mean(covered) <= 0.97
