"""SB3 DQN training speed on text FrozenLake (through textgym's wrappers) vs numeric FrozenLake-v1, in one run.

Rows, each a fresh ``stable_baselines3.DQN`` with the same hyperparameters (textgym's ``DQNConfig``
defaults, one torch thread) trained for ``--steps`` env steps:

1. ``FrozenLake-v1`` with one-hot observations (the numeric baseline);
2. ``textgym/FrozenLake-v0`` through ``TextToVector`` (hashed n-grams) and ``DiscreteActions``;
3. the same through textgym's ``SB3Learner`` (adds the callback bridge that feeds textgym's callbacks).

Rounds alternate between the rows so machine noise hits them alike; the median steps/s of each row
and its ratio to the numeric one are printed (goal: text >= 0.5x numeric). Then the cost of the
features alone: one observation hashed fresh and from the memo.

Run: ``python bench/dqn_overhead.py [--steps 10000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

import textgym  # noqa: F401 - registers the envs
from textgym.algorithms.sb3 import DQNConfig, SB3Learner
from textgym.envs.features import HashedNgrams
from textgym.policies.sb3 import SB3Policy


class OneHot(gym.ObservationWrapper):
    """Discrete state ``s`` → the one-hot vector ``e_s`` (float32)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.n = int(env.observation_space.n)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.n,), np.float32)

    def observation(self, observation: int) -> np.ndarray:
        vector = np.zeros(self.n, np.float32)
        vector[observation] = 1.0
        return vector


def sb3_steps_per_second(make_env: Callable[[], gym.Env], config: DQNConfig, seed: int) -> float:
    model = DQN("MlpPolicy", make_vec_env(make_env, n_envs=1, seed=seed), seed=seed, verbose=0, **config.model_kwargs())
    start = time.perf_counter()
    model.learn(config.total_timesteps)
    return config.total_timesteps / (time.perf_counter() - start)


def learner_steps_per_second(config: DQNConfig, seed: int) -> float:
    start = time.perf_counter()
    SB3Learner(config, seed=seed).learn(partial(gym.make, "textgym/FrozenLake-v0"), SB3Policy())
    return config.total_timesteps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000, help="env steps per training run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (one run of each row per round)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as DQNConfig.torch_threads does in SB3Learner
    config = DQNConfig(total_timesteps=args.steps, eval_every=0)
    text_policy = SB3Policy()  # its features and action index are built once, as in training
    rows: dict[str, Callable[[int], float]] = {
        "FrozenLake-v1, one-hot": lambda seed: sb3_steps_per_second(
            lambda: OneHot(gym.make("FrozenLake-v1")), config, seed),
        "textgym/FrozenLake-v0, wrappers": lambda seed: sb3_steps_per_second(
            lambda: text_policy.wrap(gym.make("textgym/FrozenLake-v0")), config, seed),
        "textgym/FrozenLake-v0, SB3Learner": lambda seed: learner_steps_per_second(config, seed),
    }
    speeds: dict[str, list[float]] = {name: [] for name in rows}
    for seed in range(args.rounds):
        for name, run in rows.items():
            speeds[name].append(run(seed))
    numeric = statistics.median(speeds["FrozenLake-v1, one-hot"])
    print(f"SB3 DQN, {args.steps} steps x {args.rounds} rounds, median steps/s (ratio to numeric)")
    for name, values in speeds.items():
        median = statistics.median(values)
        print(f"  {name:<36}{median:>8.0f} steps/s  {median / numeric:5.2f}x")
    print("goal: text through the wrappers >= 0.5x numeric\n")

    env = gym.make("textgym/FrozenLake-v0")
    observation, _ = env.reset(seed=0)
    observation = env.step("right")[0]
    fresh, memo = HashedNgrams(cache_size=0), HashedNgrams()
    for name, features in (("fresh", fresh), ("memoised", memo)):
        features([observation])
        start = time.perf_counter()
        for _ in range(2_000):
            features([observation])
        print(f"  hashed n-grams, {name:<9}{(time.perf_counter() - start) / 2_000 * 1e6:>8.1f} us per observation")


if __name__ == "__main__":
    main()
