"""Trajectory datasets, SFT on them with the policy's own prompts, ``policy.init_from``, and the TRL GRPO bridge."""

from __future__ import annotations

import json
import os
import subprocess
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import trl
from accelerate.state import AcceleratorState
from datasets import Dataset
from tiny_llm import demonstrator_agreement, learnable_end, move_adapters, save_tiny, tiny_model, tiny_tokenizer
from transformers.utils import get_json_schema

from textgym.algorithms.evaluation import evaluate, evaluate_tasks, slot_info, vector_env
from textgym.algorithms.grpo import GRPO, EpisodeTools, TextActionTools, environment_factory, tools_class
from textgym.algorithms.grpo_config import GRPOConfig
from textgym.algorithms.imitation_config import Keep
from textgym.algorithms.sft import SFT, PolicySFTTrainer, collate, sft_examples, trainer_arguments
from textgym.algorithms.sft_config import SFTConfig
from textgym.algorithms.trajectories import episode_rows, load_trajectories, save_trajectories, select
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig
from textgym.policies.llm_prompts import History, Prompt
from textgym.policies.oracle import OraclePolicy

guess_number8 = partial(gym.make, "textgym/GuessNumber8-v0")
lake = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False)
small_lake = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False, desc=["SFF", "FHF", "FFG"],
                     max_episode_steps=8, reward={"bump": -0.05})
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def tiny_policy(tokenizer, **overrides) -> LLMPolicy:
    config = LLMPolicyConfig(**{"trainable_layers": None, "lora_r": 8, "lora_target_modules": ALL_LINEAR, **overrides})
    return LLMPolicy(config, tiny_model(tokenizer), tokenizer)


def oracle_dataset(directory: Path, episodes: int = 40, trials: int = 1, history: int = 0, env_fn=guess_number8,
                   env_id: str = "textgym/GuessNumber8-v0") -> list[dict]:
    seeds = [task for task in range(episodes) for _ in range(trials)]
    result = evaluate_tasks(vector_env(env_fn, 8), OraclePolicy(), seeds, record=True)
    rows = episode_rows(result.episodes, env_id, 0, history)
    save_trajectories(rows, {"env_id": env_id, "seed": 0}, directory)
    return rows


def test_recorded_turns_are_the_episodes_with_the_prompts_the_policy_builds(tmp_path: Path) -> None:
    result = evaluate_tasks(vector_env(guess_number8, 3), OraclePolicy(), [5, 6, 7, 5], record=True)
    rows = episode_rows(result.episodes, "textgym/GuessNumber8-v0", 0, history=1)
    save_trajectories(rows, {"env_id": "textgym/GuessNumber8-v0", "seed": 0}, tmp_path / "data")
    dataset, metadata = load_trajectories(tmp_path / "data")
    assert metadata == {"env_id": "textgym/GuessNumber8-v0", "seed": 0}
    assert len(dataset) == sum(e.length for e in result.episodes)
    for number, episode in enumerate(result.episodes):
        turns = dataset.filter(lambda e, n=number: e == n, input_columns="episode")
        assert turns["turn"] == list(range(episode.length)) and set(turns["task"]) == {episode.seed}
        assert sum(turns["reward"]) == pytest.approx(episode.reward)
        assert all(sum(json.loads(t).values()) == pytest.approx(r) for t, r in zip(turns["reward_terms"], turns["reward"]))
        assert turns["terminated"][-1] and not any(turns["terminated"][:-1])
        assert json.loads(turns["info"][-1])["success"] == episode.success
        # the prompts are the LLM policy's: replaying the episode through its History gives the same chats
        history = History(1)
        for k, row in enumerate(turns):
            info = {"valid_actions": row["valid_actions"]} | ({"instructions": row["instructions"]} if k == 0 else {})
            assert history.prompts([row["observation"]], [info])[0].messages() == row["prompt"]
            history.record([row["action"]])
            assert row["completion"] == [{"role": "assistant", "content": row["action"]}]
    later = [row for row in dataset if row["turn"] > 0]
    assert later and all("You answered: " in row["prompt"][1]["content"] for row in later)  # history=1 shows it
    assert evaluate(vector_env(guess_number8, 2), OraclePolicy(), 2).episodes[0].steps is None  # off by default


def test_labelled_turns_imitate_the_expert_after_the_history_that_was_played(tmp_path: Path) -> None:
    from textgym.algorithms.imitation import episode_count, recorded_turns
    from textgym.algorithms.trajectories import imitation_turns
    from textgym.policies.random import RandomPolicy

    played = evaluate_tasks(vector_env(guess_number8, 2), RandomPolicy(seed=1), [3, 4, 5], record=True,
                            expert=OraclePolicy())
    rows = episode_rows(played.episodes, "textgym/GuessNumber8-v0", 0, history=1)
    assert all(row["expert_action"] in row["valid_actions"] for row in rows)
    assert any(row["expert_action"] != row["action"] for row in rows)  # a random guesser strays from the oracle
    assert all(row["completion"] == [{"role": "assistant", "content": row["expert_action"]}] for row in rows)
    save_trajectories(rows, {"env_id": "textgym/GuessNumber8-v0", "seed": 0}, tmp_path / "labelled")
    demonstrated = evaluate_tasks(vector_env(guess_number8, 1), OraclePolicy(), [9], record=True)
    save_trajectories(episode_rows(demonstrated.episodes, "textgym/GuessNumber8-v0", 0, history=1),
                      {"env_id": "textgym/GuessNumber8-v0", "seed": 0}, tmp_path / "oracle")
    # keep=success drops no labelled turn, whatever became of the random episodes
    parts = imitation_turns([tmp_path / "oracle", tmp_path / "labelled"], Keep.success, "textgym/GuessNumber8-v0")
    assert [len(part) for part in parts] == [demonstrated.episodes[0].length, len(rows)]
    assert episode_count(parts) == 4  # both datasets number their episodes from 0
    examples = recorded_turns([row for part in parts for row in part], history=1)
    assert [action for _, action in examples[demonstrated.episodes[0].length:]] == [r["expert_action"] for r in rows]
    for (prompt, _), row in zip(examples[demonstrated.episodes[0].length:], rows):
        assert prompt.messages() == row["prompt"]  # the history shows what was played, not the labels
    unlisted = [dict(row, expert_action="guess 99") if k == 1 else row for k, row in enumerate(rows)]
    assert len(recorded_turns(unlisted, history=1)) == len(rows)  # generate mode may write it
    kept = recorded_turns(unlisted, history=1, listed_only=True)  # score mode cannot choose it: skipped
    assert [a for _, a in kept] == [r["expert_action"] for k, r in enumerate(rows) if k != 1]
    assert kept[1][0].messages() == rows[2]["prompt"]  # the skipped turn still counts in the history
    unlabelled = evaluate_tasks(vector_env(guess_number8, 1), OraclePolicy(), [3], record=True)
    assert unlabelled.episodes[0].steps[0].expert_action is None and "expert_action" not in parts[0].column_names


def test_keep_selects_successes_or_the_best_episode_of_each_task() -> None:
    episodes = [(0, 0, 0.2, False), (1, 0, 1.0, True), (2, 1, 0.5, True), (3, 1, 0.9, True), (4, 2, -0.1, False)]
    rows = [{"episode": e, "task": t, "episode_return": r, "episode_success": s, "turn": k}
            for e, t, r, s in episodes for k in range(2)]
    dataset = Dataset.from_list(rows)
    assert len(select(dataset, Keep.all)) == 10
    assert set(select(dataset, Keep.success)["episode"]) == {1, 2, 3}
    assert set(select(dataset, Keep.best)["episode"]) == {1, 3, 4}


def test_sft_examples_are_the_prompts_the_policy_builds_and_its_answer_tokens(tokenizer, tmp_path: Path) -> None:
    rows = oracle_dataset(tmp_path / "data", episodes=3)
    policy = tiny_policy(tokenizer, history=1)
    dataset, _ = load_trajectories(tmp_path / "data")
    examples = sft_examples(dataset, policy)
    assert len(examples) == len(rows)
    history = History(1)
    for row, example in zip(rows, examples):
        prompt = history.prompts([row["observation"]], [{"valid_actions": row["valid_actions"]} |
                                                        ({"instructions": row["instructions"]} if row["turn"] == 0 else {})])[0]
        history.record([row["action"]])
        assert Prompt(example["instructions"], example["text"], tuple(example["actions"])) == prompt
        assert example["answer"] == tokenizer(row["action"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert any("You answered: " in example["text"] for example in examples)


def test_sft_on_oracle_episodes_raises_success_and_init_from_restores_it(tokenizer, tmp_path: Path, one_thread) -> None:
    oracle_dataset(tmp_path / "data")
    policy = tiny_policy(tokenizer)
    before = evaluate(vector_env(guess_number8, 16), policy, 128, seed=1).metrics()["success_rate"]
    SFT(SFTConfig(dataset=str(tmp_path / "data"), epochs=5, learning_rate=5e-3, bf16=False, cpu=True)).learn(
        guess_number8, policy)
    assert not AcceleratorState._shared_state  # reset: a later PPO Accelerator may choose its own mixed precision
    after = evaluate(vector_env(guess_number8, 16), policy, 128, seed=1).metrics()["success_rate"]
    assert after >= before + 0.2 and after >= 0.6, (before, after)

    policy.save(tmp_path / "sft")
    started = tiny_policy(tokenizer, init_from=str(tmp_path / "sft"))
    observations, infos = guess_number8().reset(seed=3)
    with torch.no_grad():
        expected = policy.decide([observations], [infos], greedy=True).logprobs
        assert torch.allclose(started.decide([observations], [infos], greedy=True).logprobs, expected, atol=1e-6)
    with pytest.raises(ValueError, match="lora_r=8 there, 4 here"):
        tiny_policy(tokenizer, lora_r=4, init_from=str(tmp_path / "sft"))


@pytest.fixture
def fresh_accelerate():  # noqa: ANN201 - a generator fixture
    """Trainers built outside a run leave accelerate's process-wide state as a run would reset it."""
    yield
    AcceleratorState._reset_state()


def generating_policy(tokenizer, adapted: bool = True, **overrides) -> LLMPolicy:
    """A generate-mode tiny policy with an earlier turn in its prompts and adapters on its top 2 of 3 layers."""
    config = LLMPolicyConfig(**{"action_mode": "generate", "max_new_tokens": 4, "history": 1, "trainable_layers": 2,
                                "lora_r": 8, **overrides})
    policy = LLMPolicy(config, tiny_model(tokenizer, layers=3), tokenizer)
    if adapted:
        move_adapters(policy)
    return policy


def sampled_rows(policy: LLMPolicy) -> tuple[list[dict], torch.Tensor]:
    """SFT rows of the answers the policy samples in 3 turns of 4 lakes, and their log pi as ``decide`` gives it."""
    env = vector_env(lake, 4)
    observations, infos = env.reset(seed=0)
    rows, logprobs = [], []
    for _ in range(3):
        with torch.no_grad():
            decision = policy.decide(list(observations), [slot_info(infos, i) for i in range(4)])
        rows += [{"instructions": p.instructions, "text": p.text, "actions": list(p.actions), "answer": list(c)}
                 for p, c in zip(decision.prompts, decision.choices)]
        logprobs.append(decision.logprobs)
        observations, *_, infos = env.step(decision.actions)
    assert any("You answered: " in row["text"] for row in rows) and all(row["instructions"] for row in rows)
    return rows, torch.cat(logprobs)


def sft_loss(policy: LLMPolicy, rows: list[dict], tmp_path: Path) -> torch.Tensor:
    """algorithm=sft's loss of the rows as one batch."""
    args = trainer_arguments(SFTConfig(dataset="unused", bf16=False, cpu=True), str(tmp_path / "sft"), seed=0)
    trainer = PolicySFTTrainer(policy, 4096, args=args, train_dataset=Dataset.from_list(rows))
    return trainer.compute_loss(policy.lm, collate(rows))


def former_sft_loss(policy: LLMPolicy, rows: list[dict], tmp_path: Path) -> torch.Tensor:
    """The loss of algorithm=sft before it used the policy's forward pass: TRL's own full forward of the whole
    token sequence (instructions prefix included), the adapters on at every token."""
    examples = []
    for row in rows:
        prompt = policy._tokens(policy.chat.prefix(row["instructions"])) + policy._tokens(policy.chat.dynamic(row["text"]))
        examples.append({"input_ids": prompt + row["answer"], "completion_mask": [0] * len(prompt) + [1] * len(row["answer"])})
    args = trl.SFTConfig(output_dir=str(tmp_path / "former"), completion_only_loss=True, max_length=None, use_cpu=True,
                         bf16=False, report_to="none")
    trainer = trl.SFTTrainer(model=policy.lm, args=args, train_dataset=Dataset.from_list(examples),
                             processing_class=policy.tokenizer)
    with torch.no_grad():
        return trainer.compute_loss(policy.lm, trainer.data_collator(list(trainer.train_dataset)))


def test_sft_loss_is_minus_log_pi_per_answer_token_as_generate_mode_samples(tokenizer, tmp_path: Path, one_thread,
                                                                              fresh_accelerate) -> None:
    policy = generating_policy(tokenizer, temperature=0.7)
    rows, logprobs = sampled_rows(policy)  # sampled at temperature 0.7, answers of 1 to 4 tokens
    tokens = sum(len(row["answer"]) for row in rows)
    loss = sft_loss(generating_policy(tokenizer, temperature=0.7), rows, tmp_path)  # cold caches: nothing reused
    assert loss.requires_grad
    torch.testing.assert_close(loss.detach(), -logprobs.sum() / tokens, atol=1e-5, rtol=0)
    # the target is pi at the policy's temperature, as sampled: at temperature 1 the same answers' loss differs
    at_one = sft_loss(generating_policy(tokenizer, temperature=1.0), rows, tmp_path)
    assert abs(at_one.item() - loss.item()) > 1e-2


def test_the_former_full_forward_loss_is_log_pi_only_while_the_adapters_are_zero(tokenizer, tmp_path: Path, one_thread,
                                                                                 fresh_accelerate) -> None:
    for adapted in (False, True):
        policy = generating_policy(tokenizer, adapted=adapted)
        rows, logprobs = sampled_rows(policy)
        expected = -logprobs.sum() / sum(len(row["answer"]) for row in rows)
        torch.testing.assert_close(sft_loss(policy, rows, tmp_path).detach(), expected, atol=1e-5, rtol=0)
        former = former_sft_loss(policy, rows, tmp_path)
        if adapted:  # adapters on the prefix's tokens: another function than the one that samples
            assert abs(float(former) - float(expected)) > 1e-3, (float(former), float(expected))
        else:
            torch.testing.assert_close(former, expected, atol=1e-5, rtol=0)


def test_sft_micro_batches_by_token_budget_give_the_same_training(tokenizer, tmp_path: Path, one_thread) -> None:
    oracle_dataset(tmp_path / "data", episodes=8)
    trained, calls = [], []
    for budget in (1, 4096):  # 1: every distinct turn alone
        policy = generating_policy(tokenizer, history=0)
        trainer_loss = PolicySFTTrainer.compute_loss

        def counted(self, *args, **kwargs):
            calls.append(budget)
            return trainer_loss(self, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(PolicySFTTrainer, "compute_loss", counted)
            SFT(SFTConfig(dataset=str(tmp_path / "data"), epochs=1, batch_size=8, learning_rate=1e-2, token_budget=budget,
                          cpu=True)).learn(guess_number8, policy)
        trained.append(torch.cat([p.detach().flatten() for p in policy.trainable_parameters()[0]]))
    steps = calls.count(4096)
    assert calls.count(1) > 2 * steps and steps >= 2
    torch.testing.assert_close(trained[0], trained[1], atol=1e-5, rtol=1e-4)


def test_imitation_configs_name_a_bad_token_budget() -> None:
    from textgym.algorithms.bc_config import BCConfig

    for config in (SFTConfig, BCConfig):
        with pytest.raises(ValueError, match="token_budget=0 must be >= 1"):
            config(dataset="d", token_budget=0)
    with pytest.raises(ValueError, match="'sometimes' is not a valid Keep"):
        SFTConfig(dataset="d", keep="sometimes")


def test_sft_in_generate_mode_writes_the_demonstrators_answers(tokenizer, tmp_path: Path, one_thread) -> None:
    oracle_dataset(tmp_path / "data", episodes=16, env_fn=lake, env_id="textgym/FrozenLake-v0")
    config = LLMPolicyConfig(trainable_layers=None, lora_r=8, action_mode="generate", max_new_tokens=4, greedy=True)
    policy = LLMPolicy(config, learnable_end(tiny_model(tokenizer)), tokenizer)
    SFT(SFTConfig(dataset=str(tmp_path / "data"), keep="all", epochs=30, batch_size=16, learning_rate=5e-3,
                  cpu=True)).learn(lake, policy)
    agreement = demonstrator_agreement(policy, tmp_path / "data")
    assert agreement >= 0.95, agreement


def test_bridge_plays_episodes_by_tool_calls_and_scores_the_env_return() -> None:
    lake = environment_factory(small_lake)()
    assert type(lake).__name__ == "FrozenLakeTools"
    for name in ("left", "down", "right", "up"):
        schema = get_json_schema(getattr(lake, name))  # what TRL renders into the prompt
        assert schema["function"]["name"] == name and schema["function"]["parameters"]["properties"] == {}
    assert "Valid actions: left, down, right, up." in lake.reset(prompt=[], seed=0)
    env = small_lake()
    env.reset(seed=0)
    expected = 0.0
    for move in ["up", "right", "right", "down", "down"]:  # a bump, then the shortest path
        reply = getattr(lake, move)()
        expected += env.step(move)[1]
    assert expected == pytest.approx(0.95) and lake.get_reward() == pytest.approx(expected)
    assert reply.endswith("The episode is over: success.")
    with pytest.raises(RuntimeError, match="episode is over"):
        lake.left()
    lake.reset(prompt=[], seed=1)
    assert lake.get_reward() == 0.0

    assert tools_class(guess_number8()) is TextActionTools  # actions are numbers: one tool taking the text
    guess = environment_factory(guess_number8)()
    guess.reset(prompt=[], seed=0)
    assert "Invalid action" in guess.act("banana") and guess.get_reward() == pytest.approx(-0.1)


def test_grpo_trains_a_few_steps_with_the_env_as_reward(tokenizer, monkeypatch, one_thread) -> None:
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    scored: list[float] = []

    def spy(self: EpisodeTools) -> float:
        scored.append(self.episode_return)
        return self.episode_return

    monkeypatch.setattr(EpisodeTools, "get_reward", spy)
    policy = tiny_policy(tokenizer)
    adapters = [p.detach().clone() for p in policy.trainable_parameters()[0]]
    grpo = GRPO(GRPOConfig(max_steps=2, tasks=4, num_generations=2, per_device_train_batch_size=4,
                           max_completion_length=24, max_tool_calling_iterations=3, learning_rate=1e-2, cpu=True))
    grpo.learn(small_lake, policy)
    logs = [entry for entry in grpo.trainer.state.log_history if "reward" in entry]
    assert [entry["step"] for entry in logs] == [1, 2]
    assert len(scored) == 2 * 4  # every rollout of both steps was scored by its env
    for step, entry in enumerate(logs):
        assert entry["rewards/FrozenLakeTools/mean"] == pytest.approx(np.mean(scored[4 * step : 4 * step + 4]))
    assert policy.lm.training is False
    assert all(p.shape == a.shape for p, a in zip(policy.trainable_parameters()[0], adapters))


@pytest.mark.slow
def test_cli_collects_fine_tunes_and_starts_ppo_from_the_result(tmp_path: Path) -> None:
    """The installed ``textgym collect``, ``train algorithm=sft`` and ``train algorithm=ppo policy.init_from=...``
    chained, in generate mode (~1 min)."""
    save_tiny(tmp_path / "tiny")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"HOME": str(tmp_path)}

    def textgym(*args: str) -> subprocess.CompletedProcess:
        run = subprocess.run(["textgym", *args], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert run.returncode == 0, run.stderr[-3000:]
        return run

    run = textgym("collect", "env=guess_number", "env.kwargs.high=8", "env.kwargs.max_guesses=4", "policy=oracle",
                  "episodes=30", "output=data", "hydra.run.dir=collect")
    assert "30 episodes" in run.stdout and "success rate 1.000" in run.stdout
    _, metadata = load_trajectories(tmp_path / "data")
    assert metadata["env_id"] == "textgym/GuessNumber-v0" and metadata["config"]["policy"]["_target_"].endswith("Oracle"
                                                                                                               "Policy")
    common = ["env=guess_number", "env.kwargs.high=8", "env.kwargs.max_guesses=4", "policy=llm", "policy.model=tiny",
              "policy.action_mode=generate", "policy.max_new_tokens=3", "logger=none", "eval.episodes=16"]
    textgym("train", *common, "algorithm=sft", "algorithm.dataset=data", "algorithm.epochs=1", "algorithm.token_budget=64",
            "hydra.run.dir=sft")
    assert (tmp_path / "sft" / "adapter" / "adapter_model.safetensors").exists()
    assert json.loads((tmp_path / "sft" / "results.json").read_text())["metrics"]["episodes"] == 16
    textgym("train", *common, "algorithm=ppo", "policy.init_from=sft", "algorithm.total_updates=1",
            "algorithm.num_envs=4", "algorithm.num_steps=4", "hydra.run.dir=ppo")
    assert json.loads((tmp_path / "ppo" / "results.json").read_text())["metrics"]["episodes"] == 16
