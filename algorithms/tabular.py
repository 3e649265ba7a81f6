"""Tabular Q-learning and SARSA with epsilon-greedy exploration, read top to bottom."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from textgym.algorithms import rng
from textgym.algorithms.base import Algorithm, AlgorithmConfig
from textgym.algorithms.evaluation import Episode
from textgym.algorithms.ground_truth import GroundTruth
from textgym.policies.tabular import TabularPolicy


class TabularMethod(str, Enum):
    """Which bootstrap target the update uses."""

    q_learning = "q_learning"
    """Off-policy: ``r + gamma * max_a Q(s', a)``."""
    sarsa = "sarsa"
    """On-policy: ``r + gamma * Q(s', a')`` with ``a'`` the epsilon-greedy action actually taken next."""


@dataclass
class TabularConfig(AlgorithmConfig):
    """Hyperparameters of tabular Q-learning and SARSA (``algorithm=q_learning`` / ``algorithm=sarsa``).

    Progress is counted in episodes: ``eval_every`` and ``checkpoint_every`` are episodes."""

    algorithm_class: ClassVar[str] = "textgym.algorithms.tabular:TabularLearner"

    method: TabularMethod = TabularMethod.q_learning
    """The update rule."""
    episodes: int = 10_000
    """Training episodes."""
    alpha: float = 0.1
    """Learning rate of the table update."""
    gamma: float = 0.99
    """Discount factor."""
    epsilon_start: float = 1.0
    """Exploration rate at the first episode."""
    epsilon_end: float = 0.05
    """Exploration rate after the decay."""
    epsilon_decay_fraction: float = 0.5
    """Share of the episodes over which epsilon decays linearly from start to end."""
    eval_every: int = 1_000
    """Episodes between greedy evaluations (0 turns them off)."""
    eval_episodes: int = 200
    """Episodes per periodic evaluation."""
    checkpoint_every: int = 1_000
    """Episodes between checkpoints (with a checkpoint dir; ``textgym train`` gives the run's)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.method = TabularMethod(self.method)
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha={self.alpha} must be in (0, 1]")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma={self.gamma} must be in [0, 1]")
        if not 0.0 <= self.epsilon_end <= self.epsilon_start <= 1.0:
            raise ValueError(
                f"need 0 <= epsilon_end ({self.epsilon_end}) <= epsilon_start ({self.epsilon_start}) <= 1"
            )
        if self.episodes < 1 or not 0.0 < self.epsilon_decay_fraction <= 1.0:
            raise ValueError("episodes must be >= 1 and epsilon_decay_fraction in (0, 1]")

    def epsilon(self, episode: int) -> float:
        """The linearly decayed exploration rate at ``episode``."""
        progress = min(1.0, episode / (self.epsilon_decay_fraction * self.episodes))
        return self.epsilon_start + progress * (self.epsilon_end - self.epsilon_start)


class TabularLearner(Algorithm[TabularConfig, TabularPolicy]):
    """Trains a :class:`TabularPolicy` by Q-learning or SARSA on one env; one iteration is one episode.

    Truncated episodes (step limits) bootstrap from the next state; only termination ends the return.
    On envs that export their MDP, each evaluation also reports ``q_error`` (max |Q - Q*|, Q* for
    this ``gamma``) and the exact ``regret`` of the greedy policy within the step limit. A checkpoint
    holds the table and every random stream (the learner's, the policy's, the env's), so a resumed run
    ends exactly where an uninterrupted one does.
    """

    policy_type = TabularPolicy
    policy_option = "a tabular policy (policy=tabular)"
    unit = "episodes"
    checkpoint_prefix = "episode"

    def __init__(self, config: TabularConfig, seed: int = 0, checkpoint_dir=None, resume: bool = False) -> None:
        super().__init__(config, seed, checkpoint_dir, resume)
        self.rng = np.random.default_rng(seed)

    @property
    def name(self) -> str:
        return self.config.method.value

    def progress(self) -> int:
        return self.ctx.episode

    def budget(self) -> int:
        return self.config.episodes

    def _setup(self) -> None:
        cfg = self.config
        self.ctx.total_episodes = cfg.episodes
        self.env = self.closing(self.env_fn())
        self.ground_truth = GroundTruth.of(self.env, cfg.gamma) if cfg.eval_every else None
        self.env.reset(seed=self.seed)  # the episodes' stream; each episode then resets without a seed

    def _explore(self, key: Hashable, actions: list[str], epsilon: float) -> str:
        if self.rng.random() < epsilon:
            return actions[self.rng.integers(len(actions))]
        return self.policy.greedy(key, actions)

    def _iterate(self) -> bool:
        cfg, policy, ctx, env = self.config, self.policy, self.ctx, self.env
        q = policy.q
        observation, info = env.reset(seed=self.seed) if ctx.episode == 0 else env.reset()
        epsilon = cfg.epsilon(ctx.episode)
        key = policy.key(observation, info)
        action = self._explore(key, list(info["valid_actions"]), epsilon)
        episode_return, length, done = 0.0, 0, False
        while not done:
            observation, reward, terminated, truncated, info = env.step(action)
            episode_return += reward
            length += 1
            done = terminated or truncated
            next_key = policy.key(observation, info)
            next_actions = list(info["valid_actions"])
            if terminated:
                target = reward
            elif cfg.method is TabularMethod.q_learning:
                target = reward + cfg.gamma * policy.values(next_key, next_actions).max()
            else:
                next_action = self._explore(next_key, next_actions, epsilon)
                target = reward + cfg.gamma * q[next_key].get(next_action, 0.0)
            value = q[key].get(action, 0.0)
            q[key][action] = value + cfg.alpha * (target - value)
            if not done:
                key = next_key
                action = next_action if cfg.method is TabularMethod.sarsa else self._explore(key, next_actions, epsilon)

        ctx.episode, ctx.env_steps = ctx.episode + 1, ctx.env_steps + length
        ctx.last_episode = Episode(episode_return, length, bool(info["success"]), int(info["invalid_actions"]))
        return self.callback.on_episode_end(ctx)

    def _eval_extras(self, player: TabularPolicy) -> dict[str, float]:
        return self.ground_truth.metrics(player) if self.ground_truth is not None else {}

    def _save(self, directory: Path) -> None:
        self.policy.save(directory)

    def _restore(self, directory: Path) -> None:
        self.policy.q.clear()
        self.policy.q.update(TabularPolicy.load(directory).q)

    def _rng_states(self) -> dict[str, Any]:
        return super()._rng_states() | {
            "learner": rng.generator_state(self.rng),
            "policy": rng.generator_state(self.policy.rng),
            "env": rng.generator_state(self.env.unwrapped.np_random),
        }

    def _set_rng_states(self, states: dict[str, Any]) -> None:
        super()._set_rng_states(states)
        rng.set_generator_state(self.rng, states["learner"])
        rng.set_generator_state(self.policy.rng, states["policy"])
        rng.set_generator_state(self.env.unwrapped.np_random, states["env"])
