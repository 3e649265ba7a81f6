"""Loading an SB3 policy runs no code from the checkpoint: safetensors + JSON, SB3's pickle only if trusted."""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
import zipfile
from functools import partial
from pathlib import Path

import gymnasium as gym
import pytest
import torch

from textgym.algorithms.sb3 import DQNConfig, MaskablePPOConfig, SB3Learner
from textgym.envs.checker import action_rng
from textgym.policies.sb3 import MODEL_FILE, POLICY_FILE, WEIGHTS_FILE, SB3Policy

guess_number = partial(gym.make, "textgym/GuessNumber-v0")


class CreatesFile:
    """Unpickling this creates ``path``: the stand-in for any code a doctored pickle runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.path,))


def doctor(zip_path: Path, marker: Path) -> None:
    """Add an entry to the zip's ``data`` JSON that SB3's loader unpickles (as it does its own classes)."""
    with zipfile.ZipFile(zip_path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    data["note"] = {":type:": "<class 'object'>", ":serialized:": base64.b64encode(pickle.dumps(CreatesFile(marker))).decode()}
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def states(count: int = 60) -> tuple[list[str], list[dict]]:
    """Observations and infos of GuessNumber games played with random listed actions."""
    env, rng = guess_number(), action_rng(5)
    observation, info = env.reset(seed=0)
    observations, infos = [observation], [info]
    while len(observations) < count:
        observation, _, terminated, truncated, info = env.step(str(rng.choice(info["valid_actions"])))
        if terminated or truncated:
            observation, info = env.reset()
        observations.append(observation)
        infos.append(info)
    return observations, infos


@pytest.fixture(scope="module")
def trained_dqn(tmp_path_factory: pytest.TempPathFactory) -> tuple[SB3Policy, Path]:
    policy = SB3Learner(DQNConfig(total_timesteps=800, learning_starts=100, eval_every=0), seed=0).learn(
        guess_number, SB3Policy())
    directory = tmp_path_factory.mktemp("dqn")
    policy.save(directory)
    return policy, directory


@pytest.mark.parametrize("algorithm", ["dqn", "maskable_ppo"])
def test_saved_then_loaded_policy_acts_identically(
    algorithm: str, trained_dqn: tuple[SB3Policy, Path], tmp_path: Path
) -> None:
    if algorithm == "dqn":
        policy, directory = trained_dqn
    else:
        config = MaskablePPOConfig(total_timesteps=256, n_steps=64, n_envs=2, batch_size=64, n_epochs=2, eval_every=0)
        policy, directory = SB3Learner(config, seed=0).learn(guess_number, SB3Policy()), tmp_path
        policy.save(directory)
    assert {WEIGHTS_FILE, POLICY_FILE, MODEL_FILE} <= {p.name for p in directory.iterdir()}
    loaded = SB3Policy.load(directory)
    assert loaded.model is None  # rebuilt from JSON + safetensors, not unpickled
    original, rebuilt = policy.network.state_dict(), loaded.network.state_dict()
    assert original.keys() == rebuilt.keys() and all(torch.equal(original[k], rebuilt[k]) for k in original)
    observations, infos = states()
    actions = policy.act(observations, infos)
    assert loaded.act(observations, infos) == actions
    assert len(set(actions)) > 1, "a constant policy would not tell two networks apart"


def test_doctored_zip_is_refused_without_running_it(trained_dqn: tuple[SB3Policy, Path], tmp_path: Path) -> None:
    _, saved = trained_dqn
    marker = tmp_path / "pwned"
    only_zip = tmp_path / "only_zip"  # an old or foreign run dir: SB3's pickle and the JSON, no safetensors
    only_zip.mkdir()
    for name in (MODEL_FILE, POLICY_FILE):
        (only_zip / name).write_bytes((saved / name).read_bytes())
    doctor(only_zip / MODEL_FILE, marker)

    with pytest.raises(ValueError, match="trust_checkpoint=true"):
        SB3Policy.load(only_zip)
    assert not marker.exists()

    swapped = tmp_path / "swapped"  # a textgym checkpoint whose zip a stranger replaced: the zip is never read
    swapped.mkdir()
    for name in (WEIGHTS_FILE, POLICY_FILE):
        (swapped / name).write_bytes((saved / name).read_bytes())
    (swapped / MODEL_FILE).write_bytes((only_zip / MODEL_FILE).read_bytes())
    SB3Policy.load(swapped)
    assert not marker.exists()

    SB3Policy.load(only_zip, trust_checkpoint=True)  # what trusting it means: the doctored pickle runs
    assert marker.exists()

    (only_zip / MODEL_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="neither"):
        SB3Policy.load(only_zip, trust_checkpoint=True)


def test_benchmark_refuses_a_doctored_zip(trained_dqn: tuple[SB3Policy, Path], tmp_path: Path) -> None:
    _, saved = trained_dqn
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "runs" / "guess_number" / "0"
    checkpoint.mkdir(parents=True)
    for name in (MODEL_FILE, POLICY_FILE):
        (checkpoint / name).write_bytes((saved / name).read_bytes())
    doctor(checkpoint / MODEL_FILE, marker)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"HOME": str(tmp_path)}
    run = subprocess.run(
        [Path(sys.executable).with_name("textgym"), "benchmark", "policies=[dqn]", "envs=[guess_number]", "seeds=[0]",
         "tasks=2", "trials=1", "max_k=1", "resamples=100", "on_error=stop", "logger=none", "hydra.run.dir=bench",
         "+setup.dqn={policy: sb3, checkpoint: 'runs/{env}/{seed}'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
    )
    assert run.returncode != 0 and "trust_checkpoint=true" in run.stderr, run.stderr[-2000:]
    assert not marker.exists()
