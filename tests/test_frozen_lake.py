"""Text FrozenLake is Gymnasium's FrozenLake-v1 in words."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from textgym.envs.frozen_lake import DIRECTIONS
from textgym.policies.random import RandomPolicy


@pytest.mark.parametrize(("map_name", "slippery"), [("4x4", True), ("4x4", False), ("8x8", True)])
def test_same_trajectories_and_rewards_as_gymnasium(map_name: str, slippery: bool) -> None:
    ours = gym.make("textgym/FrozenLake-v0", map_name=map_name, is_slippery=slippery)
    theirs = gym.make("FrozenLake-v1", map_name=map_name, is_slippery=slippery)
    rng = np.random.default_rng(0)
    for seed in range(30):
        _, info = ours.reset(seed=seed)
        state, _ = theirs.reset(seed=seed)
        assert info["state"] == state
        done = False
        while not done:
            action = int(rng.integers(4))
            _, reward, terminated, truncated, info = ours.step(DIRECTIONS[action])
            state, their_reward, their_terminated, their_truncated, _ = theirs.step(action)
            assert (info["state"], reward, terminated, truncated) == (state, their_reward, their_terminated, their_truncated)
            done = terminated or truncated


def test_transition_table_equals_gymnasiums() -> None:
    for slippery in (True, False):
        ours = gym.make("textgym/FrozenLake8x8-v0", is_slippery=slippery).unwrapped
        theirs = gym.make("FrozenLake8x8-v1", is_slippery=slippery).unwrapped
        for s in range(64):
            for a in range(4):
                mine = [(t.prob, t.next_state, float("success" in t.terms), t.terminated) for t in ours.P[s][a]]
                assert mine == [(p, n, float(r), d) for p, n, r, d in theirs.P[s][a]]


def test_observation_shows_the_grid_and_position() -> None:
    env = gym.make("textgym/FrozenLake-v0", is_slippery=False, render_mode="ansi")
    observation, info = env.reset(seed=0)
    assert observation == "@FFF\nFHFH\nFFFH\nHFFG\nYou are at row 1, column 1."
    observation, *_ = env.step("Right ")
    assert observation.startswith("You moved right.\nS@FF")
    observation, reward, terminated, _, info = env.step("down")
    assert "You fell into a hole." in observation
    assert terminated and reward == 0.0 and info["success"] is False and info["valid_actions"] == []
    assert env.render() == observation


def test_bump_term_and_goal() -> None:
    env = gym.make("textgym/FrozenLake-v0", is_slippery=False, reward={"bump": -0.05, "step": -0.01})
    env.reset(seed=0)
    observation, reward, *_, info = env.step("up")
    assert "into the edge and stayed put" in observation
    assert reward == pytest.approx(-0.06) and info["reward_terms"] == {"step": -0.01, "bump": -0.05}
    for move in ["right", "right", "down", "down", "down"]:
        env.step(move)
    observation, reward, terminated, _, info = env.step("right")
    assert terminated and info["success"] and reward == pytest.approx(0.99)
    assert env.step("left")[1:4] == (0.0, True, False)  # past the end nothing changes


def test_oracle_reaches_the_optimum_and_random_does_not() -> None:
    def success_rate(policy: str) -> float:
        env = gym.make("textgym/FrozenLake-v0")
        wins = 0
        random_policy = RandomPolicy(seed=0)
        for seed in range(500):
            observation, info = env.reset(seed=seed)
            done = False
            while not done:
                action = env.unwrapped.oracle_action() if policy == "oracle" else random_policy.act([observation], [info])[0]
                observation, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            wins += info["success"]
        return wins / 500

    assert 0.70 <= success_rate("oracle") <= 0.80  # the optimum within 100 steps is 0.74
    assert success_rate("random") < 0.05


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="map_name"):
        gym.make("textgym/FrozenLake-v0", map_name="5x5")
    with pytest.raises(ValueError, match="render_mode"):
        gym.make("textgym/FrozenLake-v0", render_mode="rgb_array")


def test_oracle_walks_the_shortest_path_on_ice_that_does_not_slip() -> None:
    env = gym.make("textgym/FrozenLake-v0", is_slippery=False)
    env.reset(seed=0)
    for steps in range(1, 7):
        *_, terminated, _, info = env.step(env.unwrapped.oracle_action())
    assert terminated and info["success"] and steps == 6
