"""float32 and bfloat16 weights of the LLM policy, side by side on the same states of an env.

The states are those of oracle episodes (seeds 0..``--episodes``-1). Each dtype scores every state's valid
actions on the acting path (instructions prefix cached, the state's tokens and its actions' trie through the
model), cold: the per-state caches are emptied first, as for states an evaluation has not seen. Rounds
alternate the two, so that machine load hits both alike. Prints the median time per round and the ratio, how
often the most likely action is the same, and the largest difference of log pi(a|s). bfloat16 pays only on a
CPU with bf16 instructions (avx512_bf16, AMX) or a GPU; elsewhere it is emulated and slower.

    python bench/llm_dtype.py [--env textgym/CustomerService-v0] [--episodes 8] [--rounds 3] [--init-from <run dir>]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import gymnasium as gym
import torch

import textgym  # noqa: F401 - registers the envs
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig


def oracle_states(env_id: str, episodes: int) -> tuple[list[str], list[dict]]:
    """Every observation (and its info) that the oracle meets in ``episodes`` seeded episodes."""
    env, observations, infos = gym.make(env_id), [], []
    for seed in range(episodes):
        observation, info = env.reset(seed=seed)
        done = False
        while not done:
            observations.append(observation)
            infos.append(info | {"instructions": env.unwrapped.instructions})
            observation, _, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
            done = terminated or truncated
    return observations, infos


def score(policy: LLMPolicy, observations: list[str], infos: list[dict], batch: int) -> tuple[float, list[dict]]:
    """Seconds to score every state cold, and the action probabilities."""
    policy._acted.clear()
    policy._lower.clear()
    start, out = time.perf_counter(), []
    for i in range(0, len(observations), batch):
        out += policy.action_probabilities(observations[i : i + batch], infos[i : i + batch])
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="textgym/CustomerService-v0", help="an env id whose env has oracle_action()")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="states per call, as the evaluation's env slots")
    parser.add_argument("--init-from", default=None, help="a trained run's dir (its adapters), e.g. a BC clone")
    args = parser.parse_args()
    observations, infos = oracle_states(args.env, args.episodes)
    policies = {dtype: LLMPolicy(LLMPolicyConfig(dtype=dtype, init_from=args.init_from))
                for dtype in ("float32", "bfloat16")}
    seconds: dict[str, list[float]] = {dtype: [] for dtype in policies}
    probabilities = {}
    with torch.no_grad():
        for policy in policies.values():  # warm-up: the instructions' prefix, built once per env
            policy.action_probabilities(observations[:1], infos[:1])
        for _ in range(args.rounds):
            for dtype, policy in policies.items():
                elapsed, probabilities[dtype] = score(policy, observations, infos, args.batch)
                seconds[dtype].append(elapsed)
    median = {dtype: statistics.median(s) for dtype, s in seconds.items()}
    full, half = probabilities["float32"], probabilities["bfloat16"]
    same = sum(max(a, key=a.get) == max(b, key=b.get) for a, b in zip(full, half))
    gap = max(abs(math.log(a[k]) - math.log(b[k])) for a, b in zip(full, half) for k in a if a[k] > 1e-6 and b[k] > 1e-6)
    print(f"{args.env}: {len(observations)} oracle states of {args.episodes} episodes, "
          f"{sum(len(i['valid_actions']) for i in infos) / len(infos):.1f} actions each, "
          f"{torch.get_num_threads()} torch threads, {args.init_from or 'base model'}")
    for dtype in policies:
        print(f"  {dtype:9} {median[dtype]:7.1f} s per round ({median[dtype] / len(observations) * 1000:.0f} ms a state)")
    print(f"  bfloat16 {median['float32'] / median['bfloat16']:.2f}x faster; same most likely action in "
          f"{same}/{len(full)} states; max |log pi difference| {gap:.3f} (actions with p > 1e-6 in both)")


if __name__ == "__main__":
    main()
