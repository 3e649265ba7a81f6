"""Tabular Q-learning and SARSA with epsilon-greedy exploration, read top to bottom."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import gymnasium as gym
import numpy as np

from textgym.algorithms.callbacks import Callback, CallbackList, TrainingContext
from textgym.algorithms.evaluation import Episode, evaluate, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.policies.tabular import TabularPolicy


class TabularMethod(str, Enum):
    """Which bootstrap target the update uses."""

    q_learning = "q_learning"
    """Off-policy: ``r + gamma * max_a Q(s', a)``."""
    sarsa = "sarsa"
    """On-policy: ``r + gamma * Q(s', a')`` with ``a'`` the epsilon-greedy action actually taken next."""


@dataclass
class TabularConfig:
    """Hyperparameters of tabular Q-learning and SARSA (``algorithm=q_learning`` / ``algorithm=sarsa``)."""

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
    eval_num_envs: int = 8
    """Vector-env slots used by the periodic evaluations."""

    def __post_init__(self) -> None:
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


class TabularLearner:
    """Trains a :class:`TabularPolicy` by Q-learning or SARSA on one env.

    Truncated episodes (step limits) bootstrap from the next state; only termination ends the return.
    On envs that export their MDP, each evaluation also reports ``q_error`` (max |Q - Q*|, Q* for
    this ``gamma``) and the exact ``regret`` of the greedy policy within the step limit.
    """

    def __init__(self, config: TabularConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def learn(
        self,
        env_fn: Callable[[], gym.Env],
        policy: TabularPolicy,
        callbacks: Sequence[Callback] = (),
    ) -> TabularPolicy:
        if not isinstance(policy, TabularPolicy):
            raise TypeError(f"{self.config.method.value} trains a tabular policy (policy=tabular), not {type(policy).__name__}")
        cfg, q = self.config, policy.q
        callback = CallbackList(callbacks)
        ctx = TrainingContext(total_episodes=cfg.episodes)
        env = env_fn()
        eval_env = vector_env(env_fn, cfg.eval_num_envs) if cfg.eval_every else None
        ground_truth = GroundTruth.of(env, cfg.gamma) if eval_env is not None else None
        callback.on_training_start(ctx)
        observation, info = env.reset(seed=self.seed)

        def explore(key, actions: list[str], epsilon: float) -> str:
            return actions[self.rng.integers(len(actions))] if self.rng.random() < epsilon else policy.greedy(key, actions)

        for episode in range(1, cfg.episodes + 1):
            epsilon = cfg.epsilon(episode - 1)
            key = policy.key(observation, info)
            action = explore(key, list(info["valid_actions"]), epsilon)
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
                    next_action = explore(next_key, next_actions, epsilon)
                    target = reward + cfg.gamma * q[next_key].get(next_action, 0.0)
                value = q[key].get(action, 0.0)
                q[key][action] = value + cfg.alpha * (target - value)
                if not done:
                    key = next_key
                    action = next_action if cfg.method is TabularMethod.sarsa else explore(key, next_actions, epsilon)

            ctx.episode, ctx.env_steps = episode, ctx.env_steps + length
            ctx.last_episode = Episode(episode_return, length, bool(info["success"]), int(info["invalid_actions"]))
            if eval_env is not None and episode % cfg.eval_every == 0:
                ctx.last_eval = evaluate(eval_env, policy, cfg.eval_episodes, seed=self.seed + episode).metrics()
                if ground_truth is not None:
                    ctx.last_eval.update(ground_truth.metrics(policy))
                callback.on_eval(ctx)
            if not callback.on_episode_end(ctx):
                break
            observation, info = env.reset()
        callback.on_training_end(ctx)
        env.close()
        if eval_env is not None:
            eval_env.close()
        return policy
