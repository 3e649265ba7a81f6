"""Median time of one env step, measured side by side in one run.

1. text FrozenLake vs Gymnasium's FrozenLake-v1 on the same seeded random actions (goal: ratio <= 3x);
2. every registered textgym env driven by its oracle (oracle time excluded; goal: <= 20 us for the games).

Both go through ``gymnasium.make`` (the same wrappers). Rounds alternate between envs so machine
noise hits them alike. Run: ``python bench/env_step.py [--steps 20000]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import textgym  # noqa: F401 - registers the envs
from textgym.envs.frozen_lake import DIRECTIONS


def step_times(env: gym.Env, actions, steps: int, seed: int) -> list[int]:
    """Nanoseconds of each of ``steps`` steps; ``actions(env, i)`` picks the action (not timed)."""
    times = []
    env.reset(seed=seed)
    for i in range(steps):
        action = actions(env, i)
        start = time.perf_counter_ns()
        _, _, terminated, truncated, _ = env.step(action)
        times.append(time.perf_counter_ns() - start)
        if terminated or truncated:
            env.reset()
    return times


def median_us(times: list[int]) -> float:
    return statistics.median(times) / 1000


def frozen_lake_ratio(steps: int, rounds: int) -> None:
    moves = np.random.default_rng(0).integers(4, size=steps)
    ours, theirs = gym.make("textgym/FrozenLake-v0"), gym.make("FrozenLake-v1")
    text_times, gym_times = [], []
    for r in range(rounds):
        gym_times += step_times(theirs, lambda env, i: int(moves[i]), steps // rounds, seed=r)
        text_times += step_times(ours, lambda env, i: DIRECTIONS[moves[i]], steps // rounds, seed=r)
    text_us, gym_us = median_us(text_times), median_us(gym_times)
    print(f"{'FrozenLake-v1 (Gymnasium)':<32}{gym_us:>8.2f} us/step")
    print(f"{'textgym/FrozenLake-v0':<32}{text_us:>8.2f} us/step")
    print(f"ratio text / numeric: {text_us / gym_us:.2f}x (goal <= 3x)\n")


def oracle_table(steps: int) -> None:
    print(f"{'env (oracle-driven)':<32}{'median':>8}   {'p90':>8}")
    for env_id in sorted(i for i in gym.registry if i.startswith("textgym/")):
        env = gym.make(env_id)
        times = step_times(env, lambda e, i: e.unwrapped.oracle_action(), steps, seed=0)
        p90 = np.percentile(times, 90) / 1000
        print(f"{env_id:<32}{median_us(times):>8.2f}   {p90:>8.2f} us/step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000, help="steps per env")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds for the FrozenLake ratio")
    args = parser.parse_args()
    frozen_lake_ratio(args.steps, args.rounds)
    oracle_table(args.steps // 4)


if __name__ == "__main__":
    main()
