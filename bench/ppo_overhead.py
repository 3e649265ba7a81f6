"""PPO's update time over a bare forward + backward of the same tokens, with SmolLM2, side by side.

A batch of turns is collected on text FrozenLake; then, alternating, we time:

* one PPO epoch on it (``PPO.update``: losses, clipping, gradient clipping, the optimizer step);
* a bare forward + backward of the same turns through the same path (``-logprobs.mean()``): the
  floor that PPO's bookkeeping adds to. Goal: PPO / bare <= 1.5x;
* for scale, a plain forward + backward of every turn's full token sequence through the whole model
  (what the prefix cache, the frozen-layer cache and sharing equal states save).

    python bench/ppo_overhead.py [--envs 8] [--steps 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import gymnasium as gym
import torch

import textgym  # noqa: F401 - registers the envs
from textgym.algorithms.evaluation import slot_info, vector_env
from textgym.algorithms.ppo import PPO, Batch
from textgym.algorithms.ppo_config import PPOConfig
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig


def collect(policy: LLMPolicy, envs: int, steps: int) -> Batch:
    env = vector_env(partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False), envs)
    observations, infos = env.reset(seed=0)
    prompts, choices, logprobs, values = [], [], [], []
    with torch.no_grad():
        for _ in range(steps):
            decision = policy.decide(list(observations), [slot_info(infos, i) for i in range(envs)])
            prompts += decision.prompts
            choices += decision.choices
            logprobs.append(decision.logprobs)
            values.append(decision.values)
            observations, _, _, _, infos = env.step(decision.actions)
    n = envs * steps
    return Batch(prompts, choices, torch.cat(logprobs), torch.cat(values), torch.randn(n), torch.randn(n))


def plain_forward_backward(policy: LLMPolicy, batch: Batch) -> None:
    """Every turn's full sequence through the whole adapted model, batched, with a backward pass."""
    sequences = [policy._tokens(policy.chat.prefix(p.instructions)) + policy._tokens(policy.chat.dynamic(p.text))
                 for p in batch.prompts]
    for start in range(0, len(sequences), policy.config.batch_size):
        chunk = sequences[start : start + policy.config.batch_size]
        length = max(map(len, chunk))
        ids = torch.tensor([s + [policy.tokenizer.eos_token_id] * (length - len(s)) for s in chunk])
        mask = torch.tensor([[1] * len(s) + [0] * (length - len(s)) for s in chunk])
        policy.lm(input_ids=ids, attention_mask=mask).logits[:, -1].logsumexp(-1).mean().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    policy = LLMPolicy(LLMPolicyConfig())
    ppo = PPO(PPOConfig(num_envs=args.envs, num_steps=args.steps, update_epochs=1, cpu=True, checkpoint_every=0))
    optimizer = ppo.setup(policy)
    batch = collect(policy, args.envs, args.steps)

    def bare() -> None:
        evaluation = policy.evaluate(batch.prompts, batch.choices)
        (-evaluation.logprobs.mean() + evaluation.values.mean()).backward()
        optimizer.zero_grad()

    def plain() -> None:
        plain_forward_backward(policy, batch)
        optimizer.zero_grad()

    runs: dict[str, list[float]] = {"ppo": [], "bare": [], "plain": []}
    for _ in range(args.repeats):  # alternate, so that machine load hits all alike
        for name, fn in (("ppo", lambda: ppo.update(policy, optimizer, batch)), ("bare", bare), ("plain", plain)):
            start = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - start)
    t = {name: statistics.median(times) for name, times in runs.items()}
    print(f"SmolLM2-135M + LoRA (top 8 layers): {len(batch)} turns, {len(set(batch.prompts))} distinct states, "
          f"{torch.get_num_threads()} threads")
    print(f"  PPO update (1 epoch)          {t['ppo']:6.2f} s   {t['ppo'] / t['bare']:.2f}x the bare pass (goal <= 1.5x)")
    print(f"  bare forward + backward       {t['bare']:6.2f} s")
    print(f"  plain full-model fwd + bwd    {t['plain']:6.2f} s   ({t['plain'] / t['ppo']:.1f}x the PPO update)")


if __name__ == "__main__":
    main()
