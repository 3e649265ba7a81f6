"""One PPO update on this process's share of a fixed global batch of 8 turns; rank 0 saves the weights.

Run alone (1 process) or under ``accelerate launch --multi_gpu --num_processes 2`` with
``ACCELERATE_USE_CPU=1`` (2 gloo processes); ``test_ppo.py`` compares the two.
"""

from __future__ import annotations

import sys
from functools import partial

import gymnasium as gym
import torch
from tiny_llm import tiny_model, tiny_tokenizer

from textgym.algorithms.evaluation import slot_info, vector_env
from textgym.algorithms.ppo import PPO, Batch
from textgym.algorithms.ppo_config import PPOConfig
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig


def weights(policy: LLMPolicy) -> list[torch.Tensor]:
    return [p.detach().cpu().clone() for group in policy.trainable_parameters() for p in group]


def main(out: str) -> None:
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    policy = LLMPolicy(LLMPolicyConfig(trainable_layers=None, lora_r=8), tiny_model(tokenizer), tokenizer)
    before = weights(policy)
    ppo = PPO(PPOConfig(num_envs=4, num_steps=2, update_epochs=2, kl_coef=0.1, cpu=True), seed=0)
    optimizer = ppo.setup(policy)
    env = vector_env(partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False), 8)
    env.reset(seed=0)
    observations, *_, infos = env.step(["right", "down", "right", "down", "left", "up", "right", "down"])
    with torch.no_grad():
        decision = policy.decide(list(observations), [slot_info(infos, i) for i in range(8)], greedy=True)
    generator = torch.Generator().manual_seed(0)
    batch = Batch(decision.prompts, decision.choices, decision.logprobs, decision.values,
                  torch.randn(8, generator=generator), torch.randn(8, generator=generator))
    acc = ppo.accelerator
    share = 8 // acc.num_processes
    ppo.update(policy, optimizer, batch.take(range(acc.process_index * share, (acc.process_index + 1) * share)))
    if acc.is_main_process:
        torch.save({"processes": acc.num_processes, "before": before, "after": weights(policy)}, out)
    acc.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1])
