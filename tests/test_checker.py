"""``textgym check`` passes sound envs and names what is wrong with broken ones."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from textgym.envs.base import InvalidAction, Outcome
from textgym.envs.checker import assert_env_sound, check_text_env
from textgym.envs.mdp import Branch

EXAMPLES = Path(__file__).parent / "examples"
sys.path.insert(0, str(EXAMPLES))
from ladder import LadderEnv  # noqa: E402 - the README's example env, importable as users would have it


class NondeterministicReset(LadderEnv):
    def _reset(self, options: dict[str, Any] | None) -> None:
        self.rung = random.randint(0, 2)  # the global RNG: not reproducible under a seed


class RaisesOnBadInput(LadderEnv):
    def parse_action(self, text: str) -> str:
        return {"step": "step", "jump": "jump"}[text]  # KeyError on anything else


class EchoesRawWords(LadderEnv):
    def parse_action(self, text: str) -> str:
        verb, _, rest = text.strip().lower().partition(" ")
        if verb in ("step", "jump") and rest:  # "step é" comes back raw: outside the observation's charset
            raise InvalidAction(f"{verb} takes no argument, got {rest!r}")
        return super().parse_action(text)


class StepsDifferently(LadderEnv):
    def _step(self, action: str) -> Outcome:  # the env climbs without ever slipping; its table still has slips
        self.rung = min(self.rung + 1, self.rungs)
        done = self.rung == self.rungs
        return Outcome("You climbed.", {"success": 1} if done else {}, done, done)


class TruncatesItself(LadderEnv):
    def _step(self, action: str) -> Outcome:
        outcome = super()._step(action)
        self.steps = getattr(self, "steps", 0) + 1
        return outcome

    def step(self, action: str):  # noqa: ANN201
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, reward, terminated, truncated or self.steps % 7 == 0, info


BROKEN = {
    "NondeterministicReset": (NondeterministicReset, "same seed, same transcript"),
    "RaisesOnBadInput": (RaisesOnBadInput, "hostile actions answered as invalid"),
    "EchoesRawWords": (EchoesRawWords, "hostile words in listed actions"),
    "StepsDifferently": (StepsDifferently, "tabular_mdp matches sampling"),
    "TruncatesItself": (TruncatesItself, "termination vs truncation"),
}
for name, (cls, _) in BROKEN.items():
    gym.register(f"broken/{name}-v0", entry_point=cls, max_episode_steps=50)


def test_example_env_is_sound() -> None:
    results = check_text_env("ladder:example/Ladder-v0")
    assert [r.name for r in results if r.status != "pass"] == []
    assert_env_sound("ladder:example/Ladder-v0")


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_envs_fail_the_right_check(name: str) -> None:
    results = {r.name: r for r in check_text_env(f"broken/{name}-v0")}
    expected = BROKEN[name][1]
    assert results[expected].status == "fail", results[expected]
    assert results[expected].fix
    with pytest.raises(AssertionError, match=expected):
        assert_env_sound(f"broken/{name}-v0")


def test_unknown_id_is_a_failed_row() -> None:
    [result] = check_text_env("textgym/NoSuchEnv-v0")
    assert result.status == "fail" and "NoSuchEnv" in result.detail


def test_cli_exit_status(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES)}
    good = subprocess.run([sys.executable, "-m", "textgym", "check", "ladder:example/Ladder-v0"], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "tabular_mdp matches sampling" in good.stdout and "FAIL" not in good.stdout
    bad = subprocess.run([sys.executable, "-m", "textgym", "check", "textgym/NoSuchEnv-v0"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == 1 and "FAIL" in bad.stdout
