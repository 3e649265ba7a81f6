"""Shared fixtures: every textgym env id, and a random-valid-action transcript helper."""

from __future__ import annotations

import gymnasium as gym
import pytest

import textgym  # noqa: F401 - registers the envs
from textgym.envs.checker import action_rng

ENV_IDS = sorted(  # the shipped envs; textgym/Remote-v0 (an integration) needs a server
    env_id for env_id, spec in gym.registry.items() if str(spec.entry_point).startswith("textgym.envs.")
)


def _transcript(env_id: str, seed: int, steps: int = 40) -> list:
    """Observations, rewards and flags of an episode driven by seeded random valid actions."""
    env = gym.make(env_id)
    rng = action_rng(seed)
    observation, info = env.reset(seed=seed)
    record = [observation]
    for _ in range(steps):
        action = str(rng.choice(info["valid_actions"]))
        observation, reward, terminated, truncated, info = env.step(action)
        record.append((action, observation, reward, terminated, truncated, info["reward_terms"]))
        if terminated or truncated:
            observation, info = env.reset()
            record.append(observation)
    return record


@pytest.fixture(params=ENV_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def transcript():  # noqa: ANN201 - returns the helper above
    """``transcript(env_id, seed, steps=40)``: a seeded random-valid-action episode record."""
    return _transcript


@pytest.fixture
def one_thread():  # noqa: ANN201 - a generator fixture
    """Tiny models run faster on one thread than on two busy cores (torch is imported only when used)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
