"""The LLM policy's fast paths agree with plain forward passes of the same model; prompts, memo, save/load."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import pytest
import torch
from tiny_llm import tiny_model, tiny_tokenizer
from transformers import DynamicCache

from textgym.algorithms.evaluation import evaluate, evaluate_tasks, slot_info, vector_env
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig
from textgym.policies.llm_prompts import History, Prompt

frozen_lake = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False)
guess_number = partial(gym.make, "textgym/GuessNumber-v0")


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def make_policy(tokenizer, layers: int = 3, perturb: bool = True, **overrides) -> LLMPolicy:
    policy = LLMPolicy(LLMPolicyConfig(**{"trainable_layers": 2, **overrides}), tiny_model(tokenizer, layers), tokenizer)
    if perturb:  # non-zero adapters, so that the adapted policy differs from the base model
        torch.manual_seed(1)
        with torch.no_grad():
            for name, p in policy.lm.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.5)
    return policy


def states(env_fn, n: int = 4, steps: int = 2):
    """Observations and infos of ``n`` slots after ``steps`` random steps (distinct states)."""
    env = vector_env(env_fn, n)
    observations, infos = env.reset(seed=0)
    for _ in range(steps):
        observations, _, _, _, infos = env.step(["right", "down", "up", "left"][:n])
    return list(observations), [slot_info(infos, i) | {"instructions": env.envs[0].unwrapped.instructions} for i in range(n)]


def plain_logprobs(policy: LLMPolicy, prompt, continuation: list[int]) -> torch.Tensor:
    """Token log-probs of ``continuation`` after the prompt: one ordinary forward of the adapted model
    over the base model's cached instructions prefix (the policy's definition)."""
    prefix = policy._prefix(prompt.instructions)
    ids = policy._tokens(policy.chat.dynamic(prompt.text)) + continuation
    out = policy.lm(input_ids=torch.tensor([ids]), cache=DynamicCache(ddp_cache_data=prefix, config=policy.lm.config))
    logprobs = out.logits[0].log_softmax(-1)
    start = len(ids) - len(continuation)
    return logprobs[start - 1 : len(ids) - 1].gather(-1, torch.tensor(continuation)[:, None]).squeeze(-1), logprobs[start - 1]


@pytest.mark.parametrize("trainable_layers", [None, 1, 2])
def test_single_token_actions_match_plain_forward(tokenizer, trainable_layers) -> None:
    policy = make_policy(tokenizer, trainable_layers=trainable_layers)
    observations, infos = states(frozen_lake)
    with torch.no_grad():
        decision = policy.decide(observations, infos)
        for prompt, choice, logprob in zip(decision.prompts, decision.choices, decision.logprobs):
            candidates = [policy._tokens(a)[0] for a in prompt.actions]
            _, next_token = plain_logprobs(policy, prompt, [])
            expected = next_token[candidates].log_softmax(-1)[choice]
            assert logprob == pytest.approx(float(expected), abs=1e-5)


@pytest.mark.parametrize(("normalisation", "dtype", "tolerance", "attention"), [
    ("sum", torch.float64, 1e-10, "sdpa"), ("mean", torch.float64, 1e-10, "sdpa"),
    # in fp32 the plain forward itself is ~5e-5 off its fp64 value here (the tiny model's logits are large);
    # eager attention takes its softmax in fp32 even in an fp64 model
    ("sum", torch.float32, 1e-4, "sdpa"), ("sum", torch.float32, 1e-4, "eager"),
])
def test_multi_token_actions_match_plain_forward(tokenizer, normalisation, dtype, tolerance, attention) -> None:
    """The candidates packed after one copy of their prompt score as K separate forwards of prompt + candidate."""
    policy = make_policy(tokenizer, normalisation=normalisation)
    policy.network.to(dtype)
    policy.lm.config._attn_implementation = attention  # the packed rows' mask in both forms
    env_fn = partial(gym.make, "textgym/GuessNumber-v0", low=90, high=120)  # multi-token numbers
    observations, infos = states(env_fn, steps=0)
    prompt = policy.history.prompts(observations, infos)[0]
    query = policy._query(prompt)
    assert query.trie.continuations  # the multi-token path
    with torch.no_grad():
        evaluation = policy.evaluate([prompt] * len(prompt.actions), range(len(prompt.actions)))
        scores = []
        for action in prompt.actions:
            tokens, _ = plain_logprobs(policy, prompt, policy._tokens(action) + [tokenizer.eos_token_id])
            scores.append(tokens.sum() if normalisation == "sum" else tokens.mean())
    torch.testing.assert_close(evaluation.logprobs, torch.stack(scores).log_softmax(-1), atol=tolerance, rtol=0)
    # the prompt ran once for all its candidates: its tokens and their trie's nodes, no K-fold copy
    prompt_tokens = len(policy._tokens(policy.chat.dynamic(prompt.text)))
    assert policy.tokens_forwarded == prompt_tokens + len(query.trie)


SHARED_PREFIXES = ("move A onto B", "move A onto C", "move A to the table", "move A", "move A onto")
"""Actions whose tokens share prefixes; "move A" and "move A onto" are prefixes of others."""


def shared_prefix_prompt() -> Prompt:
    observation, info = frozen_lake().reset(seed=0)
    return Prompt(info["instructions"], observation, SHARED_PREFIXES)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("normalisation", ["sum", "mean"])
def test_actions_sharing_prefixes_score_and_train_as_separate_forwards(tokenizer, attention, normalisation) -> None:
    """The trie of the actions gives the log-probs and the gradients of one plain forward per action."""
    policy = make_policy(tokenizer, normalisation=normalisation)
    policy.network.to(torch.float64)
    policy.lm.config._attn_implementation = attention
    prompt = shared_prefix_prompt()
    actions = range(len(prompt.actions))
    weights = torch.arange(1.0, len(actions) + 1, dtype=torch.float64)  # every action's log-prob counts differently
    adapters, _ = policy.trainable_parameters()
    packed = policy.evaluate([prompt] * len(actions), actions).logprobs
    packed_grads = torch.autograd.grad((weights * packed).sum(), adapters)
    scores = []
    for action in prompt.actions:
        tokens, _ = plain_logprobs(policy, prompt, policy._tokens(action) + [tokenizer.eos_token_id])
        scores.append(tokens.sum() if normalisation == "sum" else tokens.mean())
    separate = torch.stack(scores).log_softmax(-1)
    separate_grads = torch.autograd.grad((weights * separate).sum(), adapters)
    torch.testing.assert_close(packed, separate, atol=1e-5, rtol=0)
    assert all(g.abs().sum() > 0 for g in separate_grads)
    # relative to the largest entry: Llama's RMSNorm (and eager attention's softmax) run in fp32 even in an fp64
    # model, and the trie sums a shared node's gradient in another order than the separate forwards do
    scale = max(float(g.abs().max()) for g in separate_grads)
    for a, b in zip(packed_grads, separate_grads):
        torch.testing.assert_close(a, b, atol=1e-5 * scale, rtol=0)


def test_the_trie_row_is_shorter_than_the_chains_by_the_shared_tokens(tokenizer) -> None:
    policy = make_policy(tokenizer)
    prompt = shared_prefix_prompt()
    query = policy._query(prompt)
    chains = [(*policy._tokens(action), tokenizer.eos_token_id) for action in prompt.actions]
    nodes = len({chain[: d + 1] for chain in chains for d in range(len(chain))})  # distinct token prefixes
    assert nodes < sum(len(chain) for chain in chains)
    prompt_tokens = len(policy._tokens(policy.chat.dynamic(prompt.text)))
    x, _ = policy._batch([query], [policy._lower_states(query, policy._prefix(prompt.instructions))])
    assert x.hidden.shape[1] == policy._length(query) == len(policy._row_ids(query)) == prompt_tokens + nodes
    with torch.no_grad():
        policy.evaluate([prompt], [0])
    assert policy.tokens_forwarded == prompt_tokens + nodes
    assert policy._query(prompt).trie is query.trie  # the action set's trie is built once, then cached


def test_generated_answers_are_scored_like_plain_forward(tokenizer) -> None:
    policy = make_policy(tokenizer, action_mode="generate", max_new_tokens=4)
    observations, infos = states(frozen_lake, n=2)
    with torch.no_grad():
        decision = policy.decide(observations, infos)
        for prompt, choice, logprob in zip(decision.prompts, decision.choices, decision.logprobs):
            assert 1 <= len(choice) <= 4
            tokens, _ = plain_logprobs(policy, prompt, list(choice))
            assert logprob == pytest.approx(float(tokens.sum()), abs=1e-4)
    assert all(isinstance(a, str) for a in decision.actions)


def test_reference_is_the_base_model_and_kl_vanishes_without_adapters(tokenizer) -> None:
    policy = make_policy(tokenizer)
    observations, infos = states(frozen_lake)
    with torch.no_grad():
        decision = policy.decide(observations, infos)
        adapted = policy.evaluate(decision.prompts, decision.choices, reference_memo={})
        assert (adapted.kl > 1e-4).all()
        base = make_policy(tokenizer, perturb=False)
        untrained = base.evaluate(decision.prompts, decision.choices, reference_memo={})
        torch.testing.assert_close(untrained.kl, torch.zeros(4), atol=1e-6, rtol=0)
        with policy.lm.disable_adapter():
            reference = policy.evaluate(decision.prompts, decision.choices)
        torch.testing.assert_close(reference.logprobs, untrained.logprobs, atol=1e-5, rtol=0)


def test_gradients_reach_only_adapters_and_value_head(tokenizer) -> None:
    policy = make_policy(tokenizer)
    observations, infos = states(frozen_lake)
    with torch.no_grad():
        decision = policy.decide(observations, infos)
    evaluation = policy.evaluate(decision.prompts, decision.choices)
    (evaluation.logprobs.sum() + evaluation.values.sum() + evaluation.entropies.sum()).backward()
    adapters, value_head = policy.trainable_parameters()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in value_head)
    assert sum(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in adapters) == len(adapters)
    frozen = [p for p in policy.lm.parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in frozen)


def test_equal_states_share_one_forward_and_memo_spans_calls(tokenizer) -> None:
    policy = make_policy(tokenizer)
    env = vector_env(frozen_lake, 6)
    observations, infos = env.reset(seed=0)  # six slots, all in the start state
    infos = [slot_info(infos, i) for i in range(6)]
    memo = {}
    with torch.no_grad():
        before = policy.tokens_forwarded
        decision = policy.decide(list(observations), infos, memo=memo)
        once = policy.tokens_forwarded - before
        policy.decide(list(observations), [{k: v for k, v in i.items() if k != "instructions"} for i in infos], memo=memo)
    assert len(set(decision.prompts)) == 1 and len(memo) == 1
    assert once == len(policy._tokens(policy.chat.dynamic(decision.prompts[0].text)))
    assert policy.tokens_forwarded - before == once


def test_action_probabilities_are_what_acting_samples_from(tokenizer) -> None:
    observations, infos = states(guess_number)
    policy = make_policy(tokenizer, history=2)
    probabilities = policy.action_probabilities(observations, infos)
    with torch.no_grad():
        prompts = History(0).prompts(observations, infos)
        for i, prompt in enumerate(prompts):
            logprobs = policy.evaluate([prompt] * len(prompt.actions), list(range(len(prompt.actions)))).logprobs
            assert list(probabilities[i]) == list(prompt.actions)
            exact = torch.tensor(list(probabilities[i].values()))
            torch.testing.assert_close(exact, logprobs.exp(), atol=1e-6, rtol=1e-5)
    greedy = make_policy(tokenizer, greedy=True)
    for observation, info, row in zip(observations, infos, greedy.action_probabilities(observations, infos)):
        assert sorted(row.values())[-1] == 1.0 and sum(row.values()) == 1.0
        assert greedy.act([observation], [info]) == [max(row, key=row.get)]
    assert make_policy(tokenizer, action_mode="generate").action_probabilities(observations, infos) is None


def test_history_window_is_bounded_and_restarts_at_reset() -> None:
    history = History(window=2)
    info = {"valid_actions": ["a", "b"]}
    history.prompts(["o1"], [info | {"instructions": "I"}])
    for action, observation in [("a", "o2"), ("b", "o3"), ("a", "o4")]:
        history.record([action])
        [prompt] = history.prompts([observation], [info])
    assert prompt.text == "o2\nYou answered: b\n\no3\nYou answered: a\n\no4" and prompt.instructions == "I"
    history.record(["b"])
    [prompt] = history.prompts(["new"], [info | {"instructions": "J"}])
    assert prompt.text == "new" and prompt.instructions == "J" and prompt.actions == ("a", "b")


def test_save_and_load_give_the_same_policy(tokenizer, tmp_path) -> None:
    policy = make_policy(tokenizer)
    with torch.no_grad():
        policy.network.value_head.net[-1].bias.fill_(0.3)
    policy.save(tmp_path)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    loaded = LLMPolicy.load(tmp_path, tiny_model(tokenizer, 3), tokenizer)
    observations, infos = states(frozen_lake)
    with torch.no_grad():
        decision = policy.decide(observations, infos)
        again = loaded.evaluate(decision.prompts, decision.choices)
    torch.testing.assert_close(again.logprobs, decision.logprobs)
    torch.testing.assert_close(again.values, decision.values)


def test_a_bfloat16_model_acts_with_a_float32_value_head(tokenizer) -> None:
    """``policy.dtype=bfloat16``: the value head stays float32 and the policy scores as the float32 one does."""
    policy = make_policy(tokenizer)
    half = LLMPolicy(policy.config, tiny_model(tokenizer, 3).to(torch.bfloat16), tokenizer)
    half.lm.load_state_dict(policy.lm.state_dict())
    half.network.value_head.load_state_dict(policy.network.value_head.state_dict())
    observations, infos = states(frozen_lake)
    with torch.no_grad():
        decision = policy.decide(observations, infos)
        again = half.evaluate(decision.prompts, decision.choices)
    assert again.values.dtype == torch.float32 and half.network.value_head.net[1].weight.dtype == torch.float32
    torch.testing.assert_close(again.logprobs, decision.logprobs, atol=0.2, rtol=0)  # bf16: ~3 digits
    torch.testing.assert_close(again.values, decision.values, atol=0.2, rtol=0)


def test_acts_in_vector_envs_with_valid_actions(tokenizer) -> None:
    for env_fn in (frozen_lake, guess_number):
        metrics = evaluate(vector_env(env_fn, 4), make_policy(tokenizer, history=2), episodes=8, seed=0).metrics()
        assert metrics["episodes"] == 8 and metrics["invalid_action_rate"] == 0.0


def test_config_errors_give_the_reason() -> None:
    with pytest.raises(ValueError, match="greedy"):
        LLMPolicyConfig(temperature=0)
    with pytest.raises(ValueError, match="LoRA"):
        LLMPolicyConfig(lora_r=0)
    with pytest.raises(ValueError, match="action_mode|ActionMode|'guess'"):
        LLMPolicyConfig(action_mode="guess")



def test_slots_idle_after_their_quota_cost_the_policy_nothing(tokenizer) -> None:
    """Five tasks on four slots: while slot 0 plays its second task the others wait, shown its state, and the
    policy scores only the states of the five episodes (sampling, the idle slots would otherwise wander)."""
    policy = make_policy(tokenizer)
    result = evaluate_tasks(vector_env(guess_number, 4), policy, [3, 4, 5, 6, 7], record=True)
    history = History(0)
    played = {prompt for e in result.episodes for step in e.steps
              for prompt in history.prompts([step.observation], [step.info])}
    assert policy.tokens_forwarded == sum(policy._length(policy._query(prompt)) for prompt in played)
