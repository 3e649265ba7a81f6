"""Exact ground truth: the exported MDP, value iteration, finite horizons and regret."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import numpy as np
import pytest

from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.envs.mdp import Branch, Objective, enumerate_mdp, policy_table, solve, start_value
from textgym.envs.base import RewardSpec
from textgym.policies.oracle import OraclePolicy
from textgym.policies.random import RandomPolicy


def gymnasium_value_iteration(P: dict, gamma: float) -> np.ndarray:
    v = np.zeros(len(P))
    while True:
        new = np.array([max(sum(p * (r + gamma * (not d) * v[n]) for p, n, r, d in P[s][a]) for a in P[s]) for s in P])
        if np.abs(new - v).max() < 1e-13:
            return new
        v = new


@pytest.mark.parametrize(("env_id", "slippery"), [("FrozenLake", True), ("FrozenLake", False), ("FrozenLake8x8", True)])
def test_value_iteration_equals_gymnasiums_p_table(env_id: str, slippery: bool) -> None:
    ours = gym.make(f"textgym/{env_id}-v0", is_slippery=slippery).unwrapped.tabular_mdp()
    expected = gymnasium_value_iteration(gym.make(f"{env_id}-v1", is_slippery=slippery).unwrapped.P, gamma=0.9)
    v = solve(ours, gamma=0.9).v
    assert max(abs(v[i] - expected[s]) for i, s in enumerate(ours.states)) < 1e-9


def test_optimal_success_within_the_step_limit() -> None:
    mdp = gym.make("textgym/FrozenLake-v0").unwrapped.tabular_mdp()
    stationary = solve(mdp, objective=Objective.success).policy
    table = policy_table(mdp, lambda i: mdp.actions[i][stationary[i]])
    assert start_value(mdp, solve(mdp, horizon=100, objective=Objective.success, policy=table)) == pytest.approx(0.740, abs=0.002)
    # a clock-aware policy can do slightly better than any stationary one within 100 steps
    assert start_value(mdp, solve(mdp, horizon=100, objective=Objective.success)) == pytest.approx(0.7442, abs=1e-4)
    assert start_value(mdp, solve(mdp, objective=Objective.success)) == pytest.approx(14 / 17, abs=1e-9)


def test_reward_weights_change_the_ground_truth() -> None:
    plain = GroundTruth.of(gym.make("textgym/FrozenLake-v0"))
    costly = GroundTruth.of(gym.make("textgym/FrozenLake-v0", reward={"step": -0.01}))
    assert costly.optimal_return < plain.optimal_return - 0.1


def test_oracle_has_no_regret_and_random_has_some() -> None:
    env_fn = partial(gym.make, "textgym/FrozenLake-v0")
    optimum = GroundTruth.of(env_fn()).optimal_return
    oracle = evaluate(vector_env(env_fn, 8), OraclePolicy(), 2000, seed=0, optimal_return=optimum).metrics()
    random = evaluate(vector_env(env_fn, 8), RandomPolicy(seed=1234), 500, seed=0, optimal_return=optimum).metrics()
    assert abs(oracle["regret"]) < 0.03  # 0.004 exact (stationary vs clock-aware optimum) plus sampling noise
    assert random["regret"] > 0.6


def test_enumeration_checks_probabilities_and_size() -> None:
    def branches(state: int, action: str) -> list[Branch]:
        return [Branch(0.5, state + 1, {}, state >= 2)]

    with pytest.raises(ValueError, match="sum to 0.5"):
        enumerate_mdp({0: 1.0}, lambda s: ["go"], branches, str, RewardSpec())
    with pytest.raises(ValueError, match="more than 10 reachable states"):
        enumerate_mdp({0: 1.0}, lambda s: ["go"], lambda s, a: [Branch(1.0, s + 1, {}, False)], str, RewardSpec(), max_states=10)


def test_non_convergence_is_an_error_not_a_hang() -> None:
    mdp = enumerate_mdp({0: 1.0}, lambda s: ["stay"], lambda s, a: [Branch(1.0, 0, {}, False)], str, RewardSpec(step=-1.0))
    with pytest.raises(ValueError, match="did not converge"):
        solve(mdp, gamma=1.0, max_iterations=1000)
    assert solve(mdp, gamma=1.0, horizon=5).v[0] == -5.0
