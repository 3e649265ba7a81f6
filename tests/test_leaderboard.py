"""The leaderboard's ranking and marks, on synthetic cells with known answers."""

from __future__ import annotations

import numpy as np

from textgym.algorithms.evaluation import Episode
from textgym.leaderboard import Cell, Design, Estimate, Leaderboard


def cell(
    policy: str, env: str, success: float, tasks: int = 10, trials: int = 2, error: str | None = None
) -> Cell:
    """A cell whose first ``success`` share of tasks always succeeds, the rest always fail."""
    rng = np.random.default_rng(0)
    episodes = [
        Episode(float(t < success * tasks), int(rng.integers(2, 6)), t < success * tasks, 0, seed=t)
        for t in range(tasks)
        for _ in range(trials)
    ]
    return Cell(policy, env, episodes={0: episodes}, error=error)


def board(cells: list[Cell]) -> Leaderboard:
    return Leaderboard(Design(seeds=1, tasks=10, trials=2, max_k=2, resamples=300), cells)


def test_rank_only_over_envs_every_ranked_policy_ran() -> None:
    cells = [
        cell("a", "e1", 0.5),
        cell("a", "e2", 0.5),
        cell("b", "e1", 0.9),
        cell("b", "e2", 0.8),
        cell("c", "e1", 1.0),
        cell("c", "e2", 0.0, error="RuntimeError: no state"),
    ]
    lb = board(cells)
    assert lb.policies == ["b", "a", "c"]  # c, best on e1, ran on 1 of 2 envs: shown apart, after
    assert lb.aggregate["c"].envs == ["e1"] and not lb.aggregate["c"].ranked
    assert lb.aggregate["a"].envs == ["e1", "e2"] and lb.aggregate["a"].ranked
    assert [row[0] for row in lb.success_table()[1]] == ["b", "a"]
    assert [row[:3] for row in lb.success_table(ranked=False)[1]] == [
        ["c", str(lb.aggregate["c"].estimate), "1/2"]
    ]
    pairs = {(p.a, p.b): p.envs for p in lb.comparisons}
    assert pairs == {("b", "a"): ["e1", "e2"], ("b", "c"): ["e1"], ("a", "c"): ["e1"]}


def test_without_a_policy_on_every_env_rank_those_on_the_most_over_their_shared_envs() -> None:
    lb = board(
        [
            cell("a", "e1", 0.5),
            cell("a", "e2", 0.5),
            cell("b", "e2", 0.9),
            cell("b", "e3", 0.9),
            cell("c", "e3", 1.0),
        ]
    )
    assert {p for p, agg in lb.aggregate.items() if agg.ranked} == {"a", "b"}
    assert lb.aggregate["a"].envs == lb.aggregate["b"].envs == ["e2"]


def test_a_zero_width_interval_is_marked() -> None:
    assert (
        str(Estimate(1.0, 1.0, 1.0)) == "1.00 [1.00, 1.00]†"
        and str(Estimate(0.5, 0.25, 0.75)) == "0.50 [0.25, 0.75]"
    )
    lb = board([cell("a", "e1", 1.0)])
    success = lb.estimates["a", "e1"]["success_rate"]
    assert success.low < 1.0 and not success.no_spread  # 10 of 10 tasks: a Wilson interval at n = 10
    assert lb.estimates["a", "e1"]["mean_return"].no_spread and "†" in lb.markdown("cmd")


def test_pass_k_keeps_a_width_when_trials_vary_though_no_task_won_every_trial() -> None:
    episodes = [Episode(float(j == t % 4), 5, j == t % 4, 0, seed=t) for t in range(10) for j in range(4)]
    lb = Leaderboard(
        Design(seeds=1, tasks=10, trials=4, max_k=4, resamples=300), [Cell("a", "e", episodes={0: episodes})]
    )
    estimates = lb.estimates["a", "e"]
    assert estimates["pass^4"].value == 0.0 and not estimates["pass^4"].no_spread
    assert estimates["pass^4"].high == estimates["success_rate"].high
    assert (estimates["pass^1"].low, estimates["pass^1"].high) == (
        estimates["success_rate"].low,
        estimates["success_rate"].high,
    )
