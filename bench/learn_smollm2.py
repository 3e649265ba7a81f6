"""SmolLM2-135M-Instruct + LoRA learns text FrozenLake 4x4 (not slippery) with PPO on the CPU.

Prints the sampled success rate before training (zero-shot), the rollout success after each update,
the success rate after training, and the wall-clock and CPU minutes taken (on a shared machine the
CPU time is the fairer figure). Stops once the rollout success of the last
64 episodes reaches ``--target`` (or after ``--updates`` updates). Success is judged without shaping;
training pays -0.05 for walking into the edge (a trap-free shaping, see STACK.md).

    python bench/learn_smollm2.py [--updates 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from functools import partial

import gymnasium as gym
import torch

import textgym  # noqa: F401 - registers the envs
from textgym.algorithms.callbacks import Callback, TrainingContext
from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.ppo import PPO
from textgym.algorithms.ppo_config import PPOConfig
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig


class Report(Callback):
    """Prints one line per update; stops training once the last 64 rollout episodes reach the target success."""

    def __init__(self, target: float, start: float) -> None:
        self.recent: deque[bool] = deque(maxlen=64)
        self.target, self.start, self.reached = target, start, False

    def on_episode_end(self, ctx: TrainingContext) -> bool:
        self.recent.append(ctx.last_episode.success)
        return not self.reached

    def on_log(self, ctx: TrainingContext, metrics: dict[str, float]) -> None:
        rate = sum(self.recent) / max(len(self.recent), 1)
        seconds = metrics["time/rollout_seconds"] + metrics["time/update_seconds"]
        print(f"update {ctx.update:3d}  rollout success {rate:.2f}  entropy {metrics['train/entropy']:.2f}  "
              f"distinct states {metrics['rollout/distinct_prompts']:.0f}  {seconds:.1f} s  "
              f"total {(time.perf_counter() - self.start) / 60:.1f} min", flush=True)
        self.reached = len(self.recent) == self.recent.maxlen and rate >= self.target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes before and after")
    args = parser.parse_args()

    env_fn = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False, max_episode_steps=12, reward={"bump": -0.05})
    start = time.perf_counter()
    policy = LLMPolicy(LLMPolicyConfig(seed=args.seed))
    loaded = time.perf_counter()
    before = evaluate(vector_env(env_fn, 32), policy, args.episodes, seed=12345).metrics()
    print(f"model loaded in {loaded - start:.1f} s; zero-shot sampled success {before['success_rate']:.2f} "
          f"over {args.episodes} episodes ({time.perf_counter() - loaded:.1f} s)", flush=True)

    trained, cpu = time.perf_counter(), time.process_time()
    config = PPOConfig(total_updates=args.updates, num_envs=32, num_steps=12, checkpoint_every=0, cpu=True)
    PPO(config, seed=args.seed).learn(env_fn, policy, [Report(args.target, trained)])
    minutes, cpu_minutes = (time.perf_counter() - trained) / 60, (time.process_time() - cpu) / 60
    after = evaluate(vector_env(env_fn, 32), policy, args.episodes, seed=54321).metrics()
    print(f"\nSmolLM2-135M + LoRA (top 8 layers), PPO, text FrozenLake 4x4 not slippery, seed {args.seed}")
    print(f"sampled success before {before['success_rate']:.2f}  after {after['success_rate']:.2f}  "
          f"(sampled actions, {args.episodes} episodes each)")
    print(f"training took {minutes:.1f} wall-clock minutes, {cpu_minutes:.1f} CPU-minutes "
          f"(all {torch.get_num_threads()} threads together)")


if __name__ == "__main__":
    main()
