"""Playing one seeded episode in a test: ``play(env, seed, choose)``, two choosers (``oracle`` and
``random_valid(rng)``) and two summaries of it (``success_rate`` and ``oracle_observations``, a golden
transcript). Import it in tests as ``from episodes import ...`` (tests/ is on ``sys.path``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

Chooser = Callable[[gym.Env, dict], str]
"""``choose(env, info) -> action``: the next action, from the env and the latest info."""


class Step(NamedTuple):
    action: str
    observation: str
    reward: float  # as the env returned it
    terminated: bool
    truncated: bool
    info: dict[str, Any]


class Episode(list[Step]):
    """The steps of one episode; ``start`` is the observation that reset returned."""

    start: str

    @property
    def observations(self) -> list[str]:
        """The whole transcript: the reset observation, then each step's."""
        return [self.start, *(step.observation for step in self)]


def play(env: gym.Env, seed: int, choose: Chooser, steps: int | None = None) -> Episode:
    """Reset ``env`` with ``seed`` and step it with ``choose`` to the episode's end (which must come within
    100 steps), or for at most ``steps`` steps."""
    observation, info = env.reset(seed=seed)
    episode = Episode()
    episode.start = observation
    for _ in range(100 if steps is None else steps):
        action = choose(env, info)
        observation, reward, terminated, truncated, info = env.step(action)
        episode.append(Step(action, observation, reward, terminated, truncated, info))
        if terminated or truncated:
            return episode
    if steps is None:
        raise AssertionError("episode did not end")
    return episode


def oracle(env: gym.Env, info: dict) -> str:
    """The env's own oracle action."""
    return env.unwrapped.oracle_action()


def random_valid(rng: np.random.Generator) -> Chooser:
    """A uniformly random listed action, one draw from ``rng`` a step."""
    return lambda env, info: str(rng.choice(info["valid_actions"]))


def success_rate(env: gym.Env, choose: Chooser, episodes: int) -> float:
    """The share of seeds 0 to ``episodes - 1`` whose episode ends with ``info["success"]``."""
    return float(np.mean([play(env, seed, choose)[-1].info["success"] for seed in range(episodes)]))


def oracle_observations(env_id: str, seed: int, steps: int) -> list[str]:
    """The reset observation, then those of ``steps`` oracle steps: a golden transcript."""
    return play(gym.make(env_id), seed, oracle, steps).observations
