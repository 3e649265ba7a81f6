"""Seeded tasks through the shared evaluation path: repeated trials, pass^k, violations, and the intervals."""

from __future__ import annotations

from functools import partial
from itertools import combinations
from math import comb

import gymnasium as gym
import numpy as np
import pytest

from textgym.algorithms.evaluation import Episode, TaskTable, evaluate, evaluate_tasks, pass_hat_k, vector_env
from textgym.algorithms.statistics import bootstrap_intervals, iqm, iqm_interval
from textgym.policies.oracle import OraclePolicy
from textgym.policies.random import RandomPolicy

guess_number = partial(gym.make, "textgym/GuessNumber-v0")


@pytest.mark.parametrize(
    ("trials", "successes", "k"), [(4, 2, 1), (4, 2, 2), (4, 3, 3), (5, 4, 4), (6, 6, 2), (4, 0, 1)]
)
def test_pass_hat_k_is_the_share_of_k_subsets_that_all_succeed(trials: int, successes: int, k: int) -> None:
    runs = [True] * successes + [False] * (trials - successes)
    subsets = list(combinations(runs, k))
    assert pass_hat_k(trials, successes, k) == pytest.approx(sum(all(s) for s in subsets) / len(subsets))


def test_pass_hat_k_is_unbiased_for_p_to_the_k() -> None:
    p, n, k = 0.7, 5, 3
    expected = sum(comb(n, c) * p**c * (1 - p) ** (n - c) * pass_hat_k(n, c, k) for c in range(n + 1))
    assert expected == pytest.approx(p**k)
    with pytest.raises(ValueError, match="at least k times"):
        pass_hat_k(3, 2, 4)


def test_repeated_seeds_replay_the_same_task() -> None:
    seeds = [s for s in range(50, 56) for _ in range(4)]
    result = evaluate_tasks(vector_env(guess_number, 5), OraclePolicy(), seeds)
    assert sorted(e.seed for e in result.episodes) == sorted(seeds)
    by_task: dict[int, set] = {}
    for e in result.episodes:
        by_task.setdefault(e.seed, set()).add((e.length, e.reward, e.success))
    assert all(len(outcomes) == 1 for outcomes in by_task.values())  # a deterministic policy repeats itself
    assert len({next(iter(o)) for o in by_task.values()}) > 1  # while the tasks differ (secret numbers)


def test_pass_k_falls_with_k_for_a_random_policy() -> None:
    seeds = [s for s in range(100, 140) for _ in range(4)]
    metrics = evaluate_tasks(vector_env(guess_number, 8), RandomPolicy(seed=3), seeds).metrics()
    passes = [metrics[f"pass^{k}"] for k in range(1, 5)]
    assert passes[0] == pytest.approx(metrics["success_rate"])
    assert passes[0] > passes[1] > passes[2] > passes[3]
    table = TaskTable(evaluate_tasks(vector_env(guess_number, 3), RandomPolicy(seed=3), seeds[:40]).episodes)
    assert len(table) == 10 and table.min_trials == 4


def test_unseeded_evaluation_keeps_its_metrics_and_has_no_pass_k() -> None:
    result = evaluate(vector_env(guess_number, 4), RandomPolicy(seed=0), 30, seed=7)
    metrics = result.metrics()
    assert metrics["episodes"] == 30 and not any(k.startswith("pass^") for k in metrics)
    assert "violation_rate" not in metrics and result.violations_by_rule() is None


def test_violation_rate_on_customer_service() -> None:
    env_fn = partial(gym.make, "textgym/CustomerService-v0")
    seeds = list(range(200, 240))
    random = evaluate_tasks(vector_env(env_fn, 4), RandomPolicy(seed=0), seeds)
    oracle = evaluate_tasks(vector_env(env_fn, 4), OraclePolicy(), seeds).metrics()
    broke = np.mean([bool(e.violations) for e in random.episodes])
    assert random.metrics()["violation_rate"] == pytest.approx(broke) and broke > 0
    assert oracle["violation_rate"] == 0.0 and oracle["success_rate"] == 1.0
    by_rule = random.violations_by_rule()
    rules = {rule for e in random.episodes for rule in e.violations}
    assert set(by_rule) == rules and list(by_rule.values()) == sorted(by_rule.values(), reverse=True)
    for rule, share in by_rule.items():
        assert share == pytest.approx(np.mean([rule in e.violations for e in random.episodes]))
    assert max(by_rule.values()) <= broke <= sum(by_rule.values())


def _episodes(successes: list[list[bool]]) -> list[Episode]:
    return [Episode(float(s), 3, s, 0, seed=task) for task, runs in enumerate(successes) for s in runs]


def test_bootstrap_intervals_cover_the_estimate_and_narrow_with_more_tasks() -> None:
    rng = np.random.default_rng(1)
    few = TaskTable(_episodes((rng.random((10, 4)) < 0.5).tolist()))
    many = TaskTable(_episodes((rng.random((400, 4)) < 0.5).tolist()))
    widths = []
    for table in (few, many):
        point = table.estimates(np.arange(len(table)))
        intervals = bootstrap_intervals(table, resamples=500)
        for name, (low, high) in intervals.items():
            assert low <= point[name] <= high, name
        widths.append(intervals["success_rate"][1] - intervals["success_rate"][0])
    assert widths[1] < widths[0] / 3


def test_iqm_is_the_trimmed_mean_and_its_interval_keeps_task_level_uncertainty() -> None:
    scores = np.arange(1.0, 9.0).reshape(2, 4)  # 8 scores: the middle four are 3..6
    assert iqm(scores) == pytest.approx(4.5)
    constant_runs = np.array([[0.2, 0.5, 0.9], [0.2, 0.5, 0.9]])  # runs agree within each env
    few, many = (iqm_interval(constant_runs, np.full((2, 3), n), resamples=500) for n in (10.0, 1000.0))
    assert few[0] < float(iqm(constant_runs)) < few[1]  # tasks still vary, though seeds agree
    assert many[1] - many[0] < (few[1] - few[0]) / 5
    low, high = iqm_interval(np.array([[0.0, 1.0], [0.5, 1.0], [1.0, 1.0]]), np.full((3, 2), 20.0), resamples=500)
    assert 0.0 <= low < high <= 1.0
