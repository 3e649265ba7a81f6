"""SmolLM2-135M-Instruct + LoRA learns text FrozenLake 4x4 (not slippery) with PPO on the CPU.

Prints the sampled success rate before training (zero-shot), the rollout success after each update,
the success rate after training, and the wall-clock and CPU minutes taken (on a shared machine the
CPU time is the fairer figure). Stops once the rollout success of the last
64 episodes reaches ``--target`` (or after ``--updates`` updates). Success is judged without shaping;
training pays -0.05 for walking into the edge (a trap-free shaping, see STACK.md).

    python bench/learn_smollm2.py [--updates 40] [--seed 0]

``--sft`` first fine-tunes the policy on an expert's episodes (recorded as a trajectory dataset, then TRL's
SFTTrainer with the policy's own prompts), and prints the success before, after SFT and after PPO, with the
CPU minutes of each phase:

    python bench/learn_smollm2.py --sft [--demos 16] [--sft-epochs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import deque
from functools import partial

import gymnasium as gym
import torch

import textgym  # noqa: F401 - registers the envs
from textgym.algorithms.callbacks import Callback, TrainingContext
from textgym.algorithms.evaluation import evaluate, evaluate_tasks, vector_env
from textgym.algorithms.ppo import PPO
from textgym.algorithms.ppo_config import PPOConfig
from textgym.algorithms.sft import SFT
from textgym.algorithms.sft_config import SFTConfig
from textgym.algorithms.trajectories import episode_rows, save_trajectories
from textgym.envs.mdp import Objective, solve
from textgym.policies.base import Policy
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig


LAKE = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False, max_episode_steps=12, reward={"bump": -0.05})
"""The recipe's env: text FrozenLake 4x4, not slippery, 12 steps, -0.05 for walking into the edge."""


def ppo_config(updates: int, **overrides) -> PPOConfig:
    """The recipe's PPO settings for ``updates`` updates (``overrides``: other PPOConfig fields)."""
    return PPOConfig(total_updates=updates, num_envs=32, num_steps=12, checkpoint_every=0, cpu=True, **overrides)


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


class ShortestPath(Policy):
    """The expert of ``--sft``: greedy in the lake's exact MDP with discount 0.9, i.e. a shortest safe path.

    (The env's oracle maximises the undiscounted success probability; on a lake that does not slip, standing
    still is then as good as moving, and it walks into the edge for ever.)
    """

    def bind(self, env: gym.vector.VectorEnv) -> None:
        mdp = env.envs[0].unwrapped.tabular_mdp()
        greedy = solve(mdp, gamma=0.9, objective=Objective.success).policy
        self.moves = {s: mdp.actions[i][a] for i, (s, a) in enumerate(zip(mdp.states, greedy)) if a >= 0}

    def act(self, observations, infos) -> list[str]:
        return [self.moves[info["state"]] for info in infos]


def sft_warm_start(policy: LLMPolicy, env_fn, args: argparse.Namespace) -> None:
    """Record ``args.demos`` expert episodes as a trajectory dataset and fine-tune ``policy`` on them."""
    expert = evaluate_tasks(vector_env(env_fn, 8), ShortestPath(), list(range(args.demos)), record=True)
    with tempfile.TemporaryDirectory(prefix="sft-demos-") as directory:
        rows = episode_rows(expert.episodes, "textgym/FrozenLake-v0", args.seed, policy.config.history)
        save_trajectories(rows, {"env_id": "textgym/FrozenLake-v0", "policy": "shortest path"}, directory)
        print(f"SFT on {len(rows)} expert turns ({args.demos} episodes, expert success "
              f"{expert.metrics()['success_rate']:.2f}), {args.sft_epochs} epochs", flush=True)
        SFT(SFTConfig(dataset=directory, epochs=args.sft_epochs, cpu=True), seed=args.seed).learn(env_fn, policy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes before and after")
    parser.add_argument("--sft", action="store_true", help="fine-tune on expert episodes before PPO")
    parser.add_argument("--demos", type=int, default=16, help="--sft: expert episodes recorded")
    parser.add_argument("--sft-epochs", type=float, default=2.0, help="--sft: passes over the expert turns")
    args = parser.parse_args()

    env_fn = LAKE
    start = time.perf_counter()
    policy = LLMPolicy(LLMPolicyConfig(seed=args.seed))
    loaded = time.perf_counter()
    before = evaluate(vector_env(env_fn, 32), policy, args.episodes, seed=12345).metrics()
    print(f"model loaded in {loaded - start:.1f} s; zero-shot sampled success {before['success_rate']:.2f} "
          f"over {args.episodes} episodes ({time.perf_counter() - loaded:.1f} s)", flush=True)

    if args.sft:
        began, cpu = time.perf_counter(), time.process_time()
        sft_warm_start(policy, env_fn, args)
        sft_minutes, sft_cpu_minutes = (time.perf_counter() - began) / 60, (time.process_time() - cpu) / 60
        after_sft = evaluate(vector_env(env_fn, 32), policy, args.episodes, seed=23456).metrics()
        print(f"after SFT: sampled success {after_sft['success_rate']:.2f}; SFT took {sft_minutes:.1f} wall-clock "
              f"minutes, {sft_cpu_minutes:.1f} CPU-minutes", flush=True)

    trained, cpu = time.perf_counter(), time.process_time()
    PPO(ppo_config(args.updates), seed=args.seed).learn(env_fn, policy, [Report(args.target, trained)])
    minutes, cpu_minutes = (time.perf_counter() - trained) / 60, (time.process_time() - cpu) / 60
    after = evaluate(vector_env(env_fn, 32), policy, args.episodes, seed=54321).metrics()
    print(f"\nSmolLM2-135M + LoRA (top 8 layers), {'SFT then ' if args.sft else ''}PPO, text FrozenLake 4x4 "
          f"not slippery, seed {args.seed}")
    sft_line = f"after SFT {after_sft['success_rate']:.2f} ({sft_cpu_minutes:.1f} CPU-min)  " if args.sft else ""
    print(f"sampled success before {before['success_rate']:.2f}  {sft_line}after PPO {after['success_rate']:.2f}  "
          f"(sampled actions, {args.episodes} episodes each)")
    print(f"training took {minutes:.1f} wall-clock minutes, {cpu_minutes:.1f} CPU-minutes "
          f"(all {torch.get_num_threads()} threads together)")


if __name__ == "__main__":
    main()
