"""The text-env contract, checked on every registered ``textgym/`` env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from textgym.envs.checker import action_rng
from gymnasium.utils.env_checker import check_env

from textgym.envs.base import TextEnv


def test_check_env(env_id: str) -> None:
    env = gym.make(env_id, render_mode="ansi")
    check_env(env.unwrapped)


def test_same_seed_same_transcript(env_id: str, transcript) -> None:
    assert transcript(env_id, seed=3) == transcript(env_id, seed=3)
    assert transcript(env_id, seed=3) != transcript(env_id, seed=4) or env_id.startswith("textgym/FrozenLake")


def test_info_and_render(env_id: str) -> None:
    env = gym.make(env_id, render_mode="ansi")
    observation, info = env.reset(seed=0)
    assert isinstance(env.unwrapped, TextEnv)
    assert info["instructions"] and info["valid_actions"] and info["success"] is False
    assert env.render() == observation
    observation, reward, *_, info = env.step(info["valid_actions"][0])
    assert reward == pytest.approx(sum(info["reward_terms"].values()))


def test_invalid_actions_are_observations(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    weight = env.unwrapped.reward.invalid_action
    for bad in ["", "\x00\x07", "é" * 3, "x" * 1_000_000, "'; DROP TABLE orders; --", "{{7*7}}"]:
        observation, reward, terminated, truncated, info = env.step(bad)
        assert observation.startswith("Invalid action")
        assert info["reward_terms"]["invalid_action"] == weight
        assert not terminated
        assert env.observation_space.contains(observation)
    assert info["invalid_actions"] == 6


def test_unknown_reward_weight_is_named(env_id: str) -> None:
    with pytest.raises(ValueError, match="stpe"):
        gym.make(env_id, reward={"stpe": -0.01})


def test_reward_override(env_id: str) -> None:
    env = gym.make(env_id, reward={"step": -0.5, "invalid_action": -2.0})
    env.reset(seed=0)
    _, reward, *_, info = env.step("not an action at all")
    assert reward == pytest.approx(-2.5)
    assert info["reward_terms"] == {"step": -0.5, "invalid_action": -2.0}


def test_max_invalid_streak_truncates(env_id: str) -> None:
    env = gym.make(env_id, max_invalid_streak=2)
    _, info = env.reset(seed=0)
    assert not env.step("?")[3]
    env.step(info["valid_actions"][0])  # a valid action resets the streak
    assert not env.step("?")[3]
    env.reset(seed=0)
    env.step("?")
    assert env.step("?")[3]


@pytest.mark.parametrize("vector", ["sync", "async"])
def test_vector_envs(env_id: str, vector: str) -> None:
    fns = [lambda: gym.make(env_id) for _ in range(2)]
    envs = gym.vector.SyncVectorEnv(fns) if vector == "sync" else gym.vector.AsyncVectorEnv(fns)
    try:
        observations, infos = envs.reset(seed=[1, 2])
        assert all(isinstance(o, str) and o for o in observations)
        actions = [str(actions[0]) for actions in infos["valid_actions"]]
        observations, rewards, *_ = envs.step(actions)
        assert len(observations) == 2 and np.isfinite(rewards).all()
    finally:
        envs.close()


def test_fuzz_actions(env_id: str) -> None:
    """10,000 random, near-miss and hostile actions across seeds: never raise, always answered."""
    rng = action_rng(0)
    env = gym.make(env_id)
    _, info = env.reset(seed=0)
    hostile = ["", " ", "\n", "\x00", "é", "🙂" * 5, "x" * 1_000_000, "__import__('os').system('ls')", "<|im_end|>"]
    for i in range(10_000):
        kind = i % 4
        valid = info["valid_actions"]
        if kind == 0:
            action = str(rng.choice(valid))
        elif kind == 1:  # near miss: a valid action with a character dropped or doubled
            base = str(rng.choice(valid))
            cut = int(rng.integers(len(base)))
            action = base[:cut] + base[cut + 1 :] if i % 8 == 1 else base + base[-1]
        elif kind == 2:
            action = hostile[i % len(hostile)]
        else:
            action = "".join(chr(int(c)) for c in rng.integers(0, 0x2FFF, size=int(rng.integers(0, 30))))
        observation, _, terminated, truncated, info = env.step(action)
        rejected = "invalid_action" in info["reward_terms"]
        assert rejected == observation.startswith("Invalid action"), action[:50]
        if action in valid:
            assert not rejected, f"listed valid action {action!r} was rejected"
        if terminated or truncated:
            _, info = env.reset(seed=int(rng.integers(1000)))
