"""Behaviour cloning through the policy's own scoring: its loss is -log pi as the policy acts; it clones."""

from __future__ import annotations

import os
import signal
import subprocess
from functools import partial
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from tiny_llm import demonstrator_agreement, move_adapters, save_tiny, tiny_model, tiny_tokenizer

from textgym.algorithms.base import Interrupted
from textgym.algorithms.bc import BC, cloning_losses
from textgym.algorithms.imitation import choice_of
from textgym.algorithms.bc_config import BCConfig
from textgym.algorithms.callbacks import Callback
from textgym.algorithms.evaluation import evaluate_tasks, slot_info, vector_env
from textgym.algorithms.trajectories import episode_rows, load_trajectories, save_trajectories
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig
from textgym.policies.llm_prompts import Prompt
from textgym.policies.oracle import OraclePolicy

lake = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False)
guess_number = partial(gym.make, "textgym/GuessNumber-v0", low=90, high=120)  # multi-token candidates


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def tiny_policy(tokenizer, **overrides) -> LLMPolicy:
    config = LLMPolicyConfig(**{"trainable_layers": 2, "lora_r": 8, **overrides})
    policy = LLMPolicy(config, tiny_model(tokenizer, layers=3), tokenizer)
    move_adapters(policy)  # the adapted policy differs from the base model
    return policy


def oracle_dataset(env_fn, env_id: str, directory: Path, episodes: int) -> Path:
    result = evaluate_tasks(vector_env(env_fn, 8), OraclePolicy(), list(range(episodes)), record=True)
    save_trajectories(episode_rows(result.episodes, env_id, 0), {"env_id": env_id, "seed": 0}, directory)
    return directory


@pytest.mark.parametrize(("env_fn", "mode"), [(lake, "score"), (guess_number, "score"), (lake, "generate")])
def test_cloning_loss_is_minus_log_pi_as_decide_computes_it(tokenizer, env_fn, mode) -> None:
    policy = tiny_policy(tokenizer, action_mode=mode, max_new_tokens=4)
    env = vector_env(env_fn, 4)
    observations, infos = env.reset(seed=0)
    for _ in range(3):
        with torch.no_grad():
            decision = policy.decide(list(observations), [slot_info(infos, i) for i in range(4)])
        # the decided actions, as a demonstrator's: their cloning loss is -log pi of them, with gradients
        choices = [choice_of(policy, p, a) for p, a in zip(decision.prompts, decision.actions)]
        if mode == "score":
            assert choices == decision.choices
        fresh = tiny_policy(tokenizer, action_mode=mode, max_new_tokens=4)  # cold caches: nothing is reused
        losses = cloning_losses(fresh, decision.prompts, [c if mode == "score" else d for c, d in
                                                          zip(choices, decision.choices)])
        assert losses.requires_grad
        torch.testing.assert_close(losses.detach(), -decision.logprobs, atol=1e-5, rtol=0)
        observations, *_, infos = env.step(decision.actions)


def test_a_cloned_tiny_policy_acts_as_the_demonstrator(tokenizer, tmp_path: Path, one_thread) -> None:
    data = oracle_dataset(lake, "textgym/FrozenLake-v0", tmp_path / "data", episodes=16)
    policy = LLMPolicy(LLMPolicyConfig(trainable_layers=None, lora_r=8, greedy=True), tiny_model(tokenizer), tokenizer)
    BC(BCConfig(dataset=str(data), keep="all", epochs=30, batch_size=16, learning_rate=5e-3, cpu=True)).learn(lake, policy)
    agreement = demonstrator_agreement(policy, data)
    assert agreement >= 0.95, agreement


def test_a_stopped_run_resumes_mid_epoch_to_the_uninterrupted_adapters(tokenizer, tmp_path: Path, one_thread) -> None:
    """With a linear schedule, so that the resumed run must also take up the learning rate where it was."""
    data = oracle_dataset(lake, "textgym/FrozenLake-v0", tmp_path / "data", episodes=8)
    config = BCConfig(dataset=str(data), keep="all", epochs=2, batch_size=8, learning_rate=5e-3, cpu=True,
                      lr_scheduler="linear")

    class Rates(Callback):
        def __init__(self) -> None:
            self.rates: list[float] = []

        def on_log(self, ctx, metrics) -> None:
            self.rates.append(metrics["train/learning_rate"])

    class SigtermAtStep3(Callback):
        def on_log(self, ctx, metrics) -> None:
            if ctx.update == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # caught by the run: it stops after this batch

    def adapters(policy: LLMPolicy) -> list[torch.Tensor]:
        return [p.detach().clone() for p in policy.trainable_parameters()[0]]

    whole, rates = tiny_policy(tokenizer), Rates()
    BC(config).learn(lake, whole, [rates])
    steps = len(rates.rates)
    assert rates.rates == pytest.approx([5e-3 * (1 - k / steps) for k in range(steps)])  # to 0 after the last
    stopped = tiny_policy(tokenizer)
    with pytest.raises(Interrupted) as stop:
        config.build(checkpoint_dir=tmp_path / "checkpoints").learn(lake, stopped, [SigtermAtStep3()])
    assert stop.value.checkpoint.name == "step-000003"
    resumed = tiny_policy(tokenizer)
    algorithm = config.build(checkpoint_dir=tmp_path / "checkpoints", resume=True)
    algorithm.learn(lake, resumed)
    assert 3 < algorithm.steps_per_epoch < algorithm.budget()  # the stop fell inside the first epoch
    for a, b in zip(adapters(whole), adapters(resumed)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_hard_epochs_go_over_the_turns_whose_loss_exceeds_hard_loss(tokenizer, tmp_path: Path, one_thread) -> None:
    data = oracle_dataset(guess_number, "textgym/GuessNumber-v0", tmp_path / "data", episodes=8)
    common = {"dataset": str(data), "keep": "all", "batch_size": 4, "learning_rate": 5e-3, "cpu": True}
    first = tiny_policy(tokenizer)
    BC(BCConfig(**common, epochs=1)).learn(guess_number, first)  # where the hard epochs start
    algorithm = BC(BCConfig(**common, epochs=1, hard_epochs=2, hard_loss=0.5))
    batches: list[list[int]] = []
    algorithm._batch = lambda step, batch=algorithm._batch: batches.append(batch(step)) or batches[-1]
    algorithm.learn(guess_number, tiny_policy(tokenizer))
    with torch.no_grad():
        losses = cloning_losses(first, algorithm.prompts, algorithm.choices)
    assert algorithm.hard == torch.nonzero(losses > 0.5).flatten().tolist()
    assert 0 < len(algorithm.hard) < len(algorithm.prompts)
    hard_steps = -(-len(algorithm.hard) // 4)
    assert algorithm.progress() == algorithm.budget() == algorithm.steps_per_epoch + 2 * hard_steps
    for epoch in range(2):  # each hard epoch: every hard turn once, nothing else
        start = algorithm.steps_per_epoch + epoch * hard_steps
        assert sorted(i for batch in batches[start : start + hard_steps] for i in batch) == algorithm.hard


def test_a_run_stopped_in_a_hard_epoch_resumes_to_the_uninterrupted_adapters(tokenizer, tmp_path: Path,
                                                                              one_thread) -> None:
    data = oracle_dataset(guess_number, "textgym/GuessNumber-v0", tmp_path / "data", episodes=8)
    config = BCConfig(dataset=str(data), keep="all", epochs=1, hard_epochs=2, hard_loss=0.5, batch_size=4,
                      learning_rate=5e-3, cpu=True)
    whole = tiny_policy(tokenizer)
    uninterrupted = BC(config)
    uninterrupted.learn(guess_number, whole)
    stop_at = uninterrupted.steps_per_epoch + 2  # inside the first hard epoch

    class Sigterm(Callback):
        def on_log(self, ctx, metrics) -> None:
            if ctx.update == stop_at:
                os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Interrupted):
        config.build(checkpoint_dir=tmp_path / "checkpoints").learn(guess_number, tiny_policy(tokenizer), [Sigterm()])
    resumed = tiny_policy(tokenizer)
    algorithm = config.build(checkpoint_dir=tmp_path / "checkpoints", resume=True)
    # the changed adapters would score other hard turns: the checkpoint's list is the one that goes on
    algorithm._hard_turns = lambda: pytest.fail("a resumed run scored the hard turns again")
    algorithm.learn(guess_number, resumed)
    assert algorithm.hard == uninterrupted.hard
    for a, b in zip(whole.trainable_parameters()[0], resumed.trainable_parameters()[0]):
        torch.testing.assert_close(a.detach(), b.detach(), atol=1e-6, rtol=0)


def test_score_mode_names_a_demonstration_it_cannot_choose(tokenizer) -> None:
    wordle = partial(gym.make, "textgym/Wordle-v0")
    played = evaluate_tasks(vector_env(wordle, 2), OraclePolicy(), [0, 1], record=True)
    unlisted = [(s, s.action) for e in played.episodes for s in e.steps if s.action not in s.info["valid_actions"]]
    assert unlisted  # the oracle guesses words the env does not list
    step, action = unlisted[0]
    prompt = Prompt(step.info.get("instructions", ""), step.observation, tuple(step.info["valid_actions"]))
    with pytest.raises(ValueError, match=f"{action!r} is not among the valid actions .*policy.action_mode=generate"):
        choice_of(tiny_policy(tokenizer), prompt, action)
    assert choice_of(tiny_policy(tokenizer, action_mode="generate"), prompt, action)[-1] == tokenizer.eos_token_id


def test_bc_configs_name_bad_epochs() -> None:
    with pytest.raises(ValueError, match="epochs=0 and hard_epochs=0"):
        BCConfig(dataset="data", epochs=0)
    with pytest.raises(ValueError, match="hard_loss=0"):
        BCConfig(dataset="data", hard_epochs=1, hard_loss=0)
    assert BCConfig(dataset="data", epochs=0, hard_epochs=1).hard_epochs == 1  # going on from a clone
    with pytest.raises(ValueError, match="lr_scheduler='cosine' needs the run's length"):
        BCConfig(dataset="data", hard_epochs=1, lr_scheduler="cosine")
    with pytest.raises(ValueError, match="lr_scheduler='linar': choose one of constant, linear"):
        BCConfig(dataset="data", lr_scheduler="linar")
    assert BCConfig(dataset=["oracle", "labelled"]).datasets == ["oracle", "labelled"]  # DAgger's aggregate
    assert BCConfig(dataset="data").datasets == ["data"]
    for bad in ([], ["data", ""], [3]):
        with pytest.raises(ValueError, match="dataset="):
            BCConfig(dataset=bad)


def test_cli_clones_a_collected_dataset(tmp_path: Path) -> None:
    save_tiny(tmp_path / "tiny")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}

    def textgym(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["textgym", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL, check=False)

    collect = textgym("collect", "env=frozenlake", "env.kwargs.is_slippery=false", "policy=oracle", "episodes=8",
                      "output=data", "hydra.run.dir=collect")
    assert collect.returncode == 0, collect.stderr[-3000:]
    common = ["train", "env=frozenlake", "env.kwargs.is_slippery=false", "algorithm=bc", "policy.model=tiny",
              "logger=none", "eval.episodes=4"]
    run = textgym(*common, "algorithm.dataset=data", "algorithm.epochs=2", "hydra.run.dir=bc")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "bc" / "adapter" / "adapter_model.safetensors").exists()
    [last] = sorted((tmp_path / "bc" / "checkpoints").glob("step-*"))[-1:]
    steps_per_epoch = int((tmp_path / "bc" / "train.log").read_text().split(" steps of ")[0].rsplit(" ", 1)[-1])
    assert last.name == f"step-{2 * steps_per_epoch:06d}"
    # going on from the clone over its hard turns alone
    hard = textgym(*common, "algorithm.dataset=data", "algorithm.epochs=0", "algorithm.hard_epochs=1",
                   "algorithm.hard_loss=1e-9", "policy.init_from=bc", "hydra.run.dir=hard")
    assert hard.returncode == 0, hard.stderr[-3000:]
    assert "BC's hard turns: " in (tmp_path / "hard" / "train.log").read_text()
    assert (tmp_path / "hard" / "adapter" / "adapter_model.safetensors").exists()
    none = textgym(*common, "algorithm.dataset=data", "algorithm.epochs=0", "hydra.run.dir=none")
    assert none.returncode != 0 and "epochs=0 and hard_epochs=0" in none.stderr
    # DAgger: a policy's own states, labelled by the oracle, cloned together with the oracle's episodes
    labelled = textgym("collect", "env=frozenlake", "env.kwargs.is_slippery=false", "policy=random",
                       "policy@expert=oracle", "episodes=6", "output=labelled", "hydra.run.dir=labelling")
    assert labelled.returncode == 0, labelled.stderr[-3000:]
    assert "the policy took the expert's action in " in labelled.stdout
    rows = list(load_trajectories(tmp_path / "labelled")[0])
    replay = gym.make("textgym/FrozenLake-v0", is_slippery=False)
    for row in rows:  # each label is what the oracle does in the state the random policy reached
        if row["turn"] == 0:
            replay.reset(seed=row["task"])
        assert row["expert_action"] == replay.unwrapped.oracle_action()
        replay.step(row["action"])
    both = textgym(*common, "algorithm.dataset=[data,labelled]", "algorithm.epochs=1", "hydra.run.dir=dagger")
    assert both.returncode == 0, both.stderr[-3000:]
    oracle_turns = len(load_trajectories(tmp_path / "data")[0])
    assert f"BC on {oracle_turns + len(rows)} turns of 14 episodes" in (tmp_path / "dagger" / "train.log").read_text()
    missing = textgym(*common, "algorithm.dataset=nowhere", "hydra.run.dir=bad")
    assert missing.returncode != 0 and "nowhere holds no dataset" in missing.stderr
    assert not (tmp_path / "bad" / "checkpoints").exists()
