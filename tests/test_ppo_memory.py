"""PPO within memory: micro-batches by token budget give the one-pass update; the peak is estimated up front."""

from __future__ import annotations

import os
import subprocess
from functools import partial
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from tiny_llm import save_tiny, tiny_model, tiny_tokenizer

from textgym.algorithms import ppo_memory
from textgym.algorithms.evaluation import slot_info, vector_env
from textgym.algorithms.ppo import PPO, Batch, micro_batches
from textgym.algorithms.ppo_config import PPOConfig
from textgym.algorithms.ppo_memory import estimate_memory, plan_memory, probe_prompts
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig

guess_number = partial(gym.make, "textgym/GuessNumber-v0", low=90, high=120)  # multi-token candidates


def tiny_policy(tokenizer) -> LLMPolicy:
    return LLMPolicy(LLMPolicyConfig(trainable_layers=2, lora_r=8), tiny_model(tokenizer, layers=3), tokenizer)


def weights(policy: LLMPolicy) -> list[torch.Tensor]:
    return [p.detach().clone() for group in policy.trainable_parameters() for p in group]


def one_update(tokenizer, token_budget: int) -> tuple[list[torch.Tensor], list[torch.Tensor], dict[str, float]]:
    policy = tiny_policy(tokenizer)
    before = weights(policy)
    ppo = PPO(PPOConfig(num_envs=4, num_steps=3, update_epochs=2, num_minibatches=2, kl_coef=0.1, cpu=True,
                        token_budget=token_budget), seed=0)
    optimizer = ppo.setup(policy)
    env = vector_env(guess_number, 6)
    observations, infos = env.reset(seed=0)
    prompts, choices, logprobs, values = [], [], [], []
    with torch.no_grad():
        for step in range(2):  # 12 turns: some states repeat across slots and steps
            decision = policy.decide(list(observations), [slot_info(infos, i) for i in range(6)])
            prompts += decision.prompts
            choices += decision.choices
            logprobs.append(decision.logprobs)
            values.append(decision.values)
            observations, _, _, _, infos = env.step(decision.actions)
    generator = torch.Generator().manual_seed(0)
    batch = Batch(prompts, choices, torch.cat(logprobs), torch.cat(values), torch.randn(12, generator=generator),
                  torch.randn(12, generator=generator))
    metrics = ppo.update(policy, optimizer, batch)
    return before, weights(policy), metrics


def test_micro_batched_update_equals_the_one_pass_update() -> None:
    tokenizer = tiny_tokenizer()
    before, whole, one_pass = one_update(tokenizer, token_budget=10**6)
    _, split, micro = one_update(tokenizer, token_budget=1)  # every distinct state alone
    assert one_pass["train/micro_batches"] == 1 and micro["train/micro_batches"] > 3
    assert any(not torch.equal(a, b) for a, b in zip(before, whole))
    for a, b in zip(whole, split):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    for key in ("train/policy_loss", "train/value_loss", "train/entropy", "train/kl_to_reference"):
        assert one_pass[key] == pytest.approx(micro[key], abs=1e-5)


def test_micro_batches_respect_the_budget_and_keep_equal_states_together() -> None:
    units = [("a", 5), ("b", 4), ("a", 5), ("c", 9), ("d", 1), ("b", 4)]
    parts = micro_batches(units, budget=10)
    assert parts == [[0, 2, 1, 5], [3, 4]]
    assert micro_batches(units, budget=3) == [[0, 2], [1, 5], [3], [4]]  # over-budget units run alone
    assert sorted(i for part in micro_batches(units, 1000) for i in part) == list(range(6))


def test_memory_plan_grows_with_the_budget_and_fails_naming_the_setting(monkeypatch) -> None:
    tokenizer = tiny_tokenizer()
    policy = tiny_policy(tokenizer)
    sizes = probe_prompts(guess_number, policy)
    assert sizes.prefix > 10 and sizes.row > 31 * 2 and sizes.reads > 31  # 31 multi-token candidates
    small, large = (estimate_memory(policy, sizes, budget, torch.device("cpu")) for budget in (256, 8192))
    assert large.update > 8 * small.update and large.caches == small.caches
    plan = plan_memory(policy, PPOConfig(cpu=True), guess_number, torch.device("cpu"))
    assert sizes.row <= plan.token_budget <= ppo_memory.MAX_AUTO_BUDGET
    monkeypatch.setattr(ppo_memory, "_available", lambda: 0)  # a machine with nothing free
    with pytest.raises(MemoryError, match="policy.lower_cache_mb"):
        plan_memory(policy, PPOConfig(cpu=True), guess_number, torch.device("cpu"))
    with pytest.raises(MemoryError, match="algorithm.token_budget"):
        plan_memory(policy, PPOConfig(cpu=True, num_envs=512, num_steps=64, token_budget=10**8), guess_number,
                    torch.device("cpu"))


def test_cli_fails_in_one_line_before_training_when_the_run_cannot_fit(tmp_path: Path) -> None:
    save_tiny(tmp_path / "tiny")
    run = subprocess.run(
        ["textgym", "train", "env=guess_number", "policy=llm", "policy.model=tiny", "algorithm=ppo",
         "algorithm.num_envs=2", "algorithm.num_steps=2", "policy.lower_cache_mb=100000000", "logger=none",
         "hydra.run.dir=run"],
        cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, capture_output=True,
        text=True, timeout=300, check=False,
    )
    assert run.returncode != 0
    [line] = [line for line in run.stderr.splitlines() if line.startswith("MemoryError: the run will not fit")]
    assert "lower policy.lower_cache_mb" in line
    assert not (tmp_path / "run" / "checkpoints").exists()
