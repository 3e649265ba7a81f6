"""How often a trained LLM policy's greedy action equals the oracle's, on held-out states the oracle visits.

Plays the oracle on fresh seeds (10,000 on, never a recipe's training or evaluation seeds) and asks the
policy for its most likely action in every state: the per-state agreement a behaviour-cloned policy reached,
tallied by the kind of the oracle's action (a tool's name, or a fixed message), then the first disagreements.
It tells whether a clone's failed episodes come from a few hard decisions or from everywhere.

    python bench/clone_agreement.py runs/learn_suite/customer_service-seed0/bc --episodes 24
    python bench/clone_agreement.py <dir> --env textgym/BlocksWorld-v0 --kwargs '{"num_blocks": 4}'
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter

import gymnasium as gym
import torch

import textgym  # noqa: F401 - registers the envs
from textgym.policies.llm import LLMPolicy

FIRST_SEED = 10_000


def kind(action: str) -> str:
    """A tool call's name; a message in full but for order ids (the fixed messages are the decisions)."""
    if action.startswith("send_message"):
        return re.sub(r"\bW\d{4}\b", "W....", action)
    return re.sub(r"\(.*", "", action, flags=re.DOTALL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy", help="a dir written by LLMPolicy.save (a textgym train run, a checkpoint)")
    parser.add_argument("--env", default="textgym/CustomerService-v0")
    parser.add_argument("--kwargs", default="{}", help="the env's keyword arguments, as JSON")
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--show", type=int, default=5, help="disagreements to print")
    args = parser.parse_args()

    policy = LLMPolicy.load(args.policy)
    env = gym.make(args.env, **json.loads(args.kwargs))
    seen, agreed, disagreements = Counter(), Counter(), []
    with torch.no_grad():
        for seed in range(FIRST_SEED, FIRST_SEED + args.episodes):
            observation, info = env.reset(seed=seed)
            done = False
            while not done:
                target = env.unwrapped.oracle_action()
                chosen = policy.decide([observation], [info], greedy=True).actions[0]
                seen[kind(target)] += 1
                agreed[kind(target)] += chosen == target
                if chosen != target:
                    disagreements.append((observation, target, chosen))
                observation, _, terminated, truncated, info = env.step(target)
                done = terminated or truncated
    total = sum(seen.values())
    print(f"{args.env}: greedy agreement with the oracle {sum(agreed.values())}/{total} = "
          f"{sum(agreed.values()) / total:.3f} over {args.episodes} episodes' states")
    for name, count in seen.most_common():
        print(f"  {agreed[name]:4d}/{count:<4d} {name}")
    for observation, target, chosen in disagreements[: args.show]:
        print(f"---\n{observation}\n  oracle: {target}\n  policy: {chosen}")


if __name__ == "__main__":
    main()
