"""LLM policies in ``textgym benchmark``: one base model per run, shared across cells, with the same episodes
as a freshly loaded policy per cell."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from test_cli import textgym
from tiny_llm import save_tiny

from textgym.algorithms.evaluation import Episode, evaluate_tasks, vector_env
from textgym.factory import BaseModels
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig

CELLS = [("textgym/FrozenLake-v0", {"is_slippery": False}), ("textgym/GuessNumber-v0", {})]
"""Two envs whose texts the tiny tokenizer was trained on."""
TASKS = [1_000_000 + task for task in range(3) for _ in range(2)]
"""3 tasks x 2 trials, as the benchmark deals them."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model", layers=3)


@pytest.fixture(scope="module")
def checkpoint(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved policy whose adapters are far from zero (so that it acts unlike the base model)."""
    policy = LLMPolicy(LLMPolicyConfig(model=str(model_dir), trainable_layers=2, seed=3))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in policy.lm.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    directory = tmp_path_factory.mktemp("checkpoint")
    policy.save(directory)
    return directory


def play(policy: LLMPolicy, env_id: str, kwargs: dict) -> list[Episode]:
    env = vector_env(partial(gym.make, env_id, **kwargs), 2)
    episodes = evaluate_tasks(env, policy, TASKS).episodes
    env.close()
    return episodes


def test_shared_base_plays_the_episodes_of_fresh_policies(model_dir: Path, checkpoint: Path) -> None:
    """Cells in the benchmark's order (zero-shot, trained, zero-shot again on each env) on one shared base give
    the episodes that a policy loaded from disk for each cell gives; the trained cells differ from zero-shot."""
    zero_shot = LLMPolicyConfig(model=str(model_dir), trainable_layers=2, seed=0)
    models = BaseModels()
    shared, fresh = [], []
    for env_id, kwargs in CELLS:
        for directory in (None, checkpoint, None):
            shared.append(play(models.policy(zero_shot, directory), env_id, kwargs))
            alone = LLMPolicy(zero_shot) if directory is None else LLMPolicy.load(directory)
            fresh.append(play(alone, env_id, kwargs))
    assert len(models) == 1
    assert shared == fresh
    assert shared[0] == shared[2] and shared[3] == shared[5]  # the trained cell left no trace on the base
    assert shared[0] != shared[1] or shared[3] != shared[4]  # and it did act differently


def test_a_failed_checkpoint_leaves_the_base_clean(model_dir: Path, tmp_path: Path) -> None:
    """A checkpoint built differently fails with its reason, and the next cell still plays as a fresh policy."""
    other = LLMPolicy(LLMPolicyConfig(model=str(model_dir), trainable_layers=1))
    other.save(tmp_path)
    (tmp_path / "value_head.safetensors").unlink()
    models = BaseModels()
    config = LLMPolicyConfig(model=str(model_dir), trainable_layers=2)
    with pytest.raises(FileNotFoundError):
        models.policy(config, tmp_path)
    env_id, kwargs = CELLS[1]
    assert play(models.policy(config), env_id, kwargs) == play(LLMPolicy(config), env_id, kwargs)


def test_benchmark_command_loads_the_model_once(model_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    """The installed command, zero-shot and trained LLM cells on two envs: one base model load in the log."""
    tiny = f"overrides: ['policy.model={model_dir}', 'policy.trainable_layers=2']"
    run = textgym(
        "benchmark", "envs=[frozenlake,guess_number]", "policies=[llm,trained]", "seeds=[0,1]", "tasks=2",
        "trials=2", "max_k=2", "num_envs=2", "resamples=200", "logger=none",
        f"+setup.llm={{policy: llm, {tiny}}}", f"+setup.trained={{policy: llm, checkpoint: '{checkpoint}', {tiny}}}",
        "hydra.run.dir=bench", cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    log = (tmp_path / "bench" / "benchmark.log").read_text()
    assert log.count("loading base model") == 1, log
    assert len(re.findall(r"(llm|trained) on (frozenlake|guess_number): \d+ steps in [\d.]+ s", log)) == 4, log
    assert "n/a" not in run.stdout and "| llm |" in run.stdout and "| trained |" in run.stdout, run.stdout


def test_a_cell_trained_with_ppo_leaves_the_base_clean(model_dir: Path, tmp_path: Path) -> None:
    """A policy trained on the shared base (a ``setup.<name>.algorithm`` cell) moves its adapters, and the next
    cell's zero-shot policy still plays as a fresh one."""
    from textgym.algorithms.ppo import PPO
    from textgym.algorithms.ppo_config import PPOConfig

    env_id, kwargs = CELLS[0]
    config = LLMPolicyConfig(model=str(model_dir), trainable_layers=2)
    models = BaseModels()
    trained = models.policy(config)
    before = [p.detach().clone() for p in trained.trainable_parameters()[0]]
    ppo = PPOConfig(total_updates=1, num_envs=2, num_steps=4, checkpoint_every=0, cpu=True)
    PPO(ppo, seed=0).learn(partial(gym.make, env_id, **kwargs), trained)
    assert any(not torch.equal(a, b) for a, b in zip(before, trained.trainable_parameters()[0]))
    assert play(models.policy(config), env_id, kwargs) == play(LLMPolicy(config), env_id, kwargs)
