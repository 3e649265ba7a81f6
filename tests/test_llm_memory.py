"""The LLM policy's byte-bounded caches: LRU eviction by bytes, and every cache of the policy within its budget."""

from __future__ import annotations

import pytest
import torch

from textgym.policies.llm_memory import ByteLRU, nbytes
from textgym.policies.llm_trie import Trie


def test_evicts_least_recently_used_by_bytes() -> None:
    cache: ByteLRU[str, torch.Tensor] = ByteLRU(max_bytes=3 * 400)
    for key in "abc":
        cache.put(key, torch.zeros(100))  # 400 bytes each: exactly full
    assert cache.bytes == 1200 and len(cache) == 3
    assert cache.get("a") is not None  # "a" is now the most recently used, "b" the least
    cache.put("d", torch.zeros(150))  # 600 bytes: "b" and then "c" make room
    assert "b" not in cache and "c" not in cache and "a" in cache and "d" in cache
    assert cache.bytes == 1000


def test_replacing_a_key_recounts_and_oversized_values_are_not_kept() -> None:
    cache: ByteLRU[str, torch.Tensor] = ByteLRU(max_bytes=1000)
    cache.put("a", torch.zeros(200))
    cache.put("a", torch.zeros(50))
    assert cache.bytes == 200 and len(cache) == 1
    big = torch.zeros(1000)
    assert cache.put("big", big) is big and "big" not in cache and "a" in cache
    assert ByteLRU(0).fetch("x", lambda: 7) == 7 and len(ByteLRU(0)) == 0


def test_fetch_computes_once() -> None:
    calls = []
    cache: ByteLRU[str, int] = ByteLRU(max_bytes=10_000)
    for _ in range(3):
        assert cache.fetch("k", lambda: calls.append(1) or 42) == 42
    assert calls == [1]


def test_sizes_count_tensors_and_nested_containers() -> None:
    assert nbytes(torch.zeros(10, dtype=torch.float64)) == 80
    pair = [(torch.zeros(4), torch.zeros(4))]
    assert nbytes(pair) >= 32 + 32
    trie = Trie.build(((1, 2, 3), (1, 4)))  # a dataclass (the token cache holds action sets' tries): by its fields
    assert nbytes(trie) > nbytes(trie.continuations) + nbytes(trie.tokens) + nbytes(trie.end)
    with pytest.raises(ValueError, match="max_bytes"):
        ByteLRU(-1)


def test_the_policy_keeps_each_cache_within_its_budget() -> None:
    from functools import partial

    import gymnasium as gym
    from tiny_llm import tiny_model, tiny_tokenizer

    from textgym.algorithms.evaluation import evaluate, vector_env
    from textgym.policies.llm import LLMPolicy
    from textgym.policies.llm_config import LLMPolicyConfig

    tokenizer = tiny_tokenizer()
    budget = 0.2  # MB: a few prompts' frozen-layer outputs (each ~40 KB with its 31 candidates)
    policy = LLMPolicy(LLMPolicyConfig(trainable_layers=1, lower_cache_mb=budget, prefix_cache_mb=budget,
                                       token_cache_mb=budget, result_cache_mb=budget, history=2),
                       tiny_model(tokenizer, 3), tokenizer)
    evaluate(vector_env(partial(gym.make, "textgym/GuessNumber-v0", low=90, high=120), 4), policy, 8, seed=0)
    for cache in (policy._lower, policy._prefixes, policy._tokenized, policy._acted):
        assert 0 < cache.bytes <= budget * 1024**2
    assert len(policy._lower) > 1


def test_acting_reuses_results_until_a_trained_weight_changes(tmp_path) -> None:
    import gymnasium as gym
    from tiny_llm import tiny_model, tiny_tokenizer

    from textgym.policies.llm import LLMPolicy
    from textgym.policies.llm_config import LLMPolicyConfig

    tokenizer = tiny_tokenizer()
    policy = LLMPolicy(LLMPolicyConfig(trainable_layers=1, greedy=True), tiny_model(tokenizer, 3), tokenizer)
    env = gym.make("textgym/GuessNumber-v0", low=1, high=20)
    observation, info = env.reset(seed=0)

    def forwarded_by_acting() -> int:
        before = policy.tokens_forwarded
        policy.act([observation, observation], [info, info])
        return policy.tokens_forwarded - before

    assert forwarded_by_acting() > 0
    assert forwarded_by_acting() == 0  # the same state again: its result is reused
    policy.save(tmp_path / "saved")
    adapter = next(p for p in policy.trainable_parameters()[0])
    with torch.no_grad():
        adapter.add_(0.5)  # what an optimizer step does: in place
    assert forwarded_by_acting() > 0
    policy.load_weights(tmp_path / "saved")
    assert forwarded_by_acting() > 0
    with torch.no_grad():
        policy.network.value_head.net[-1].bias.fill_(3.0)
    assert forwarded_by_acting() > 0
    fresh = policy.decide([observation], [info], greedy=True).values
    assert torch.allclose(policy.decide([observation], [info], greedy=True, memo=policy._acting_memo()).values, fresh)
