"""Where the zero-shot LLM row of ``textgym benchmark`` spends its time, env by env.

Each env's cell is played as the benchmark plays it (its run config ``env=<env> policy=llm seed=<seed>``,
``tasks x trials`` seeded episodes over ``num_envs`` slots, the base model shared through
:class:`~textgym.factory.BaseModels`), and one row per env gives: the prompts the policy scored (one per
slot and step, idle slots included), how many of them were distinct, their mean length in tokens (the
dynamic part, after the instructions prefix) and the prefix's, the mean number of actions per prompt, the
tokens run through the trainable layers, and the cell's wall and CPU seconds. The base model's one load is
timed apart.

Run: ``python bench/llm_benchmark.py [overrides of conf/benchmark.yaml]``, e.g. ``'seeds=[0]' tasks=10 trials=4``
(the README's leaderboard size) or ``'envs=[wordle]' tasks=2 trials=2``; only the first seed is played.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from textgym.algorithms.evaluation import evaluate_tasks, vector_env
from textgym.benchmark import BenchmarkConfig, Grid, torch_threads
from textgym.factory import make_env, make_policy
from textgym.policies.base import Policy
from textgym.policies.llm import LLMPolicy
from textgym.tables import markdown_table

class Counting(Policy):
    """Passes ``act`` on to an LLM policy and counts the prompts it scores."""

    def __init__(self, policy: LLMPolicy) -> None:
        self.policy = policy
        self.prompts: list[tuple[str, tuple[str, ...]]] = []
        """Observation and valid actions of every prompt (with ``history=0`` they make the prompt)."""
        self.instructions: set[str] = set()
        """The distinct instructions (each encoded once into a prefix KV cache)."""

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        self.prompts += [(text, tuple(info["valid_actions"])) for text, info in zip(observations, infos)]
        self.instructions |= {info["instructions"] for info in infos if "instructions" in info}
        return self.policy.act(observations, infos)


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="of conf/benchmark.yaml, as for textgym benchmark")
    args = parser.parse_args()
    rows, total = [], clock()
    with initialize_config_module("textgym.conf", version_base="1.3"):
        config: BenchmarkConfig = OmegaConf.to_object(compose("benchmark", overrides=["policies=[llm]", *args.overrides]))
        grid, seed = Grid(config, []), config.seeds[0]
        with torch_threads(config.torch_threads):
            for env in grid.env_names():
                run = grid.run_config("llm", env, seed)
                start = clock()
                policy = make_policy(run.policy, grid.models)
                if not rows:
                    load = since(start)
                    start = clock()
                counting = Counting(policy)
                vector = vector_env(partial(make_env, run.env, run.reward), config.num_envs)
                episodes = evaluate_tasks(vector, counting, grid.task_seeds(seed)).episodes
                vector.close()
                wall, cpu = since(start)
                distinct = set(counting.prompts)
                dynamic = [tokens(policy, policy.chat.dynamic(text)) for text, _ in counting.prompts]
                prefixes = [policy.prefix_length(instructions) for instructions in counting.instructions]
                rows.append([
                    env, len(counting.prompts), len(distinct), f"{sum(dynamic) / len(dynamic):.0f}",
                    f"{len(prefixes)} x {sum(prefixes) / len(prefixes):.0f}",
                    f"{sum(len(a) for _, a in counting.prompts) / len(counting.prompts):.1f}",
                    policy.tokens_forwarded, f"{sum(e.success for e in episodes) / len(episodes):.2f}",
                    f"{wall:.0f}", f"{cpu:.0f}",
                ])
    wall, cpu = since(total)
    header = ["env", "prompts", "distinct", "tokens/prompt", "prefixes x tokens", "actions/prompt",
              "tokens forwarded", "success", "wall s", "CPU s"]
    print(markdown_table(header, rows))  # noqa: T201
    print(f"\nbase model loaded once: {load[0]:.1f} s ({load[1]:.1f} CPU-s); whole run {wall / 60:.1f} min "  # noqa: T201
          f"({cpu / 60:.1f} CPU-min); seed {seed}, {config.tasks} tasks x {config.trials} trials, "
          f"{config.num_envs} slots")


def tokens(policy: LLMPolicy, text: str) -> int:
    return len(policy.tokenizer(text, add_special_tokens=False)["input_ids"])


if __name__ == "__main__":
    main()
