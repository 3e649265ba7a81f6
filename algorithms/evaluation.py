"""The one evaluation path: training's periodic evals, ``textgym benchmark`` and the tests all use it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from textgym.policies.base import Policy


def vector_env(env_fn: Callable[[], gym.Env], num_envs: int) -> SyncVectorEnv:
    """``num_envs`` copies stepped together; a finished episode resets in the same step."""
    return SyncVectorEnv([env_fn] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


def slot_info(infos: Mapping[str, Any], i: int) -> dict[str, Any]:
    """The ``info`` dict of slot ``i`` out of a vector env's batched infos."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_") or not infos.get(f"_{key}", np.ones(i + 1, bool))[i]:
            continue
        out[key] = slot_info(value, i) if isinstance(value, Mapping) else value[i]
    return out


@dataclass
class Episode:
    """One finished episode, as the evaluation records it."""

    reward: float
    length: int
    success: bool
    invalid_actions: int


@dataclass
class EvalResult:
    """Per-episode records and the metrics computed from them."""

    episodes: list[Episode] = field(default_factory=list)
    optimal_return: float | None = None
    """``V*(start)`` within the step limit, on envs with exact ground truth."""

    def metrics(self) -> dict[str, float]:
        """Success rate, mean return, mean length, the share of invalid steps, and regret when known."""
        steps = sum(e.length for e in self.episodes)
        regret = {} if self.optimal_return is None else {"regret": self.optimal_return - np.mean([e.reward for e in self.episodes])}
        return {
            "episodes": len(self.episodes),
            "success_rate": float(np.mean([e.success for e in self.episodes])),
            "mean_return": float(np.mean([e.reward for e in self.episodes])),
            "mean_length": float(np.mean([e.length for e in self.episodes])),
            "invalid_action_rate": sum(e.invalid_actions for e in self.episodes) / max(steps, 1),
            **regret,
        }


def evaluate(
    env: gym.vector.VectorEnv,
    policy: Policy,
    episodes: int,
    seed: int | None = None,
    optimal_return: float | None = None,
) -> EvalResult:
    """Run ``policy`` until ``episodes`` episodes have finished, spread evenly over the env's slots.

    Slot ``i`` runs ``episodes // n`` episodes (the first ``episodes % n`` slots one more), so short
    episodes are not over-represented. ``seed`` seeds slot ``i`` with ``seed + i``. With
    ``optimal_return`` (``V*(start)``), the metrics include the Monte-Carlo ``regret``.
    """
    n = env.num_envs
    quota = [episodes // n + (i < episodes % n) for i in range(n)]
    result = EvalResult(optimal_return=optimal_return)
    returns, lengths = np.zeros(n), np.zeros(n, dtype=int)
    observations, infos = env.reset(seed=seed)
    policy.bind(env)
    while len(result.episodes) < episodes:
        actions = policy.act(list(observations), [slot_info(infos, i) for i in range(n)])
        observations, rewards, terminated, truncated, infos = env.step(actions)
        returns += rewards
        lengths += 1
        for i in np.flatnonzero(terminated | truncated):
            if quota[i] > 0:
                quota[i] -= 1
                final = slot_info(infos["final_info"], i)
                result.episodes.append(
                    Episode(float(returns[i]), int(lengths[i]), bool(final["success"]), int(final["invalid_actions"]))
                )
            returns[i], lengths[i] = 0.0, 0
    return result
