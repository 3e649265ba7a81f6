"""How often a trained LLM policy's greedy action equals the oracle's, on held-out states the oracle visits.

Plays the oracle on fresh seeds (10,000 on, never a recipe's training or evaluation seeds) and asks the
policy for its most likely action in every state: the per-state agreement a behaviour-cloned policy reached,
tallied by the kind of the oracle's action (a tool's name, or a fixed message), then the first disagreements.
It tells whether a clone's failed episodes come from a few hard decisions or from everywhere. With
``--dataset``, the states are those of a recorded dataset (``textgym collect``) instead, each judged against
its expert label (DAgger's) or else its recorded action: on the clone's own training data, what it failed to
fit; on a labelled collection, where it goes wrong in the states it reaches itself.

    python bench/clone_agreement.py runs/learn_suite/customer_service-seed0/bc --episodes 24
    python bench/clone_agreement.py <dir> --env textgym/BlocksWorld-v0 --kwargs '{"num_blocks": 4}'
    python bench/clone_agreement.py <bc dir> --dataset <its collect dir> --episodes 32
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import torch

import textgym  # noqa: F401 - registers the envs
from textgym.algorithms.trajectories import load_trajectories
from textgym.policies.llm import LLMPolicy

State = tuple[str, dict[str, Any], str]
"""An observation, its info (valid actions, instructions) and the action to agree with."""

FIRST_SEED = 10_000


def kind(action: str) -> str:
    """A tool call's name; a message in full but for order ids (the fixed messages are the decisions)."""
    if action.startswith("send_message"):
        return re.sub(r"\bW\d{4}\b", "W....", action)
    return re.sub(r"\(.*", "", action, flags=re.DOTALL)


def oracle_states(env_id: str, kwargs: dict[str, Any], episodes: int) -> Iterator[State]:
    """Every state of the oracle's episodes from seed ``FIRST_SEED`` on, with its action."""
    env = gym.make(env_id, **kwargs)
    for seed in range(FIRST_SEED, FIRST_SEED + episodes):
        observation, info = env.reset(seed=seed)
        done = False
        while not done:
            target = env.unwrapped.oracle_action()
            yield observation, info, target
            observation, _, terminated, truncated, info = env.step(target)
            done = terminated or truncated


def recorded_states(directory: str, episodes: int) -> Iterator[State]:
    """The turns of the dataset's first ``episodes`` episodes, each with its expert label or else its action."""
    dataset, _ = load_trajectories(directory)
    labels = dataset["expert_action"] if "expert_action" in dataset.column_names else [None] * len(dataset)
    first = sorted(set(dataset["episode"]))[:episodes]
    for row, label in zip(dataset, labels):
        if row["episode"] in first:
            info = {"valid_actions": row["valid_actions"], "instructions": row["instructions"]}
            yield row["observation"], info, row["action"] if label is None else label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy", help="a dir written by LLMPolicy.save (a textgym train run, a checkpoint)")
    parser.add_argument("--env", default="textgym/CustomerService-v0")
    parser.add_argument("--kwargs", default="{}", help="the env's keyword arguments, as JSON")
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--dataset", help="judge the states of this recorded dataset (textgym collect) instead")
    parser.add_argument("--show", type=int, default=5, help="disagreements to print")
    args = parser.parse_args()

    policy = LLMPolicy.load(args.policy)
    if args.dataset and policy.config.history:
        parser.error(f"--dataset judges single states: this policy prompts with {policy.config.history} earlier turns")
    states = (recorded_states(args.dataset, args.episodes) if args.dataset
              else oracle_states(args.env, json.loads(args.kwargs), args.episodes))
    seen, agreed, disagreements = Counter(), Counter(), []
    with torch.no_grad():
        for observation, info, target in states:
            chosen = policy.decide([observation], [info], greedy=True).actions[0]
            seen[kind(target)] += 1
            agreed[kind(target)] += chosen == target
            if chosen != target:
                disagreements.append((observation, target, chosen))
    total = sum(seen.values())
    source = f"{args.dataset}'s first" if args.dataset else f"{args.env}: the oracle's"
    print(f"greedy agreement {sum(agreed.values())}/{total} = {sum(agreed.values()) / total:.3f} over {source} "
          f"{args.episodes} episodes' states")
    for name, count in seen.most_common():
        print(f"  {agreed[name]:4d}/{count:<4d} {name}")
    for observation, target, chosen in disagreements[: args.show]:
        print(f"---\n{observation}\n  oracle: {target}\n  policy: {chosen}")


if __name__ == "__main__":
    main()
