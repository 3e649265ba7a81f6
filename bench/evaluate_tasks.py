"""The cost of seeded tasks in the shared evaluation and of the benchmark's statistics, side by side.

1. ``evaluate_tasks`` (each episode reset with its task's seed: a partial reset of its vector-env slot
   after the autoreset) vs ``evaluate`` (slots continue from their own autoreset) on the same number of
   episodes, random policy, 8 slots; rounds alternate so machine noise hits both alike. The extra cost
   is one reset per episode, so it shows on envs with short episodes and costly resets.
2. The bootstrap intervals of every metric of one cell and the IQM interval of a policy, as the
   benchmark computes them, next to the evaluation time of that cell.

Run: ``python bench/evaluate_tasks.py [--tasks 50 --trials 4 --rounds 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import gymnasium as gym
import numpy as np

import textgym  # noqa: F401 - registers the envs
from textgym.algorithms.evaluation import TaskTable, evaluate, evaluate_tasks, vector_env
from textgym.algorithms.statistics import bootstrap_intervals, iqm_interval
from textgym.policies.random import RandomPolicy


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    seeds = [task for task in range(1_000_000, 1_000_000 + args.tasks) for _ in range(args.trials)]
    print(f"{len(seeds)} episodes per evaluation ({args.tasks} tasks x {args.trials} trials), 8 slots")
    print(f"{'env':<26}{'evaluate':>10}{'evaluate_tasks':>16}{'ratio':>8}")
    for env_id in (
        "textgym/FrozenLake-v0",
        "textgym/GuessNumber-v0",
        "textgym/Wordle-v0",
        "textgym/CustomerService-v0",
    ):
        env = vector_env(partial(gym.make, env_id), 8)
        plain, tasks = [], []
        for r in range(args.rounds):
            plain.append(seconds(lambda: evaluate(env, RandomPolicy(seed=r), len(seeds), seed=r)))
            tasks.append(seconds(lambda: evaluate_tasks(env, RandomPolicy(seed=r), seeds)))
        a, b = statistics.median(plain), statistics.median(tasks)
        print(f"{env_id:<26}{a * 1000:>8.1f}ms{b * 1000:>14.1f}ms{b / a:>7.2f}x")

    env = vector_env(partial(gym.make, "textgym/GuessNumber-v0"), 8)
    result = evaluate_tasks(env, RandomPolicy(seed=0), seeds)
    table = TaskTable(result.episodes)
    evaluation = statistics.median(
        seconds(lambda: evaluate_tasks(env, RandomPolicy(seed=0), seeds)) for _ in range(3)
    )
    intervals = statistics.median(
        seconds(lambda: bootstrap_intervals(table, 0.7, 4, 0.95, 2000)) for _ in range(3)
    )
    scores = np.random.default_rng(0).random((2, 10))
    aggregate = statistics.median(seconds(lambda: iqm_interval(scores, np.full_like(scores, 50), 0.95, 2000)) for _ in range(3))
    print(
        f"\nGuessNumber cell: evaluation {evaluation * 1000:.1f} ms, bootstrap intervals of all "
        f"{len(table.estimates(np.arange(len(table)), 0.7))} metrics (2000 resamples) "
        f"{intervals * 1000:.1f} ms "
        f"({intervals / evaluation:.2f}x); IQM interval of 2 seeds x 10 envs {aggregate * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
