"""``textgym check`` passes sound envs and names what is wrong with broken ones: textgym's own
(``TextEnv``) and plain Gymnasium envs with Text spaces, each broken one failing on its own check."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from test_cli import textgym

from textgym.envs.base import InvalidAction, Outcome
from textgym.envs.checker import assert_env_sound, run_checks

EXAMPLES = Path(__file__).parent / "examples"
sys.path.insert(0, str(EXAMPLES))
from ladder import LadderEnv  # noqa: E402 - the README's example env, importable as users would have it
from plain_guess import PlainGuessEnv  # noqa: E402 - a text game on gymnasium.Env directly


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
    "RaisesOnBadInput": (RaisesOnBadInput, "hostile actions handled"),
    "EchoesRawWords": (EchoesRawWords, "hostile words in listed actions"),
    "StepsDifferently": (StepsDifferently, "tabular_mdp matches sampling"),
    "TruncatesItself": (TruncatesItself, "termination vs truncation"),
}
for name, (cls, _) in BROKEN.items():
    gym.register(f"broken/{name}-v0", entry_point=cls, max_episode_steps=50)




# ---- plain Gymnasium envs: each broken one has one defect --------------------------------------------
class PlainNondeterministic(PlainGuessEnv):
    def feedback(self, guess: int) -> str:  # the global RNG, from the second wrong guess on
        self.wrong = getattr(self, "wrong", 0) + 1
        return super().feedback(guess) + (random.choice([" Try again.", " Keep going."]) if self.wrong > 1 else "")


class PlainRaisesOnHostile(PlainGuessEnv):
    def step(self, action: str):  # noqa: ANN201
        if not self.action_space.contains(action):
            raise ValueError("action outside the action space")  # an LLM's text is not bound by the space
        return super().step(action)


class PlainTruncatesItself(PlainGuessEnv):
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        self.turns = 0
        return super().reset(seed=seed, options=options)

    def step(self, action: str):  # noqa: ANN201 - its own turn limit of 3, under a registered limit of 10
        self.turns += 1
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, reward, terminated, truncated or (not terminated and self.turns == 3), info


class PlainNaNReward(PlainGuessEnv):
    def step(self, action: str):  # noqa: ANN201
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, float("nan") if action == "4" and not terminated else reward, terminated, truncated, info


class PlainRendersLines(PlainGuessEnv):
    def render(self) -> Any:
        return self.view if self.view.startswith("Guess") else self.view.splitlines()  # a list after a step


class PlainUnpicklable(PlainGuessEnv):
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        self.scorer = lambda guess: guess == self.secret  # pickle cannot store a lambda (deepcopy can)
        return super().reset(seed=seed, options=options)


class PlainListsRejectedAction(PlainGuessEnv):
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        observation, info = super().reset(seed=seed, options=options)
        return observation, {"valid_actions": [*info["valid_actions"], "5"]}  # then answers '5' as invalid


PLAIN_BROKEN = {
    "PlainNondeterministic": (PlainNondeterministic, "same seed, same transcript"),
    "PlainRaisesOnHostile": (PlainRaisesOnHostile, "hostile actions handled", "hostile words in listed actions"),
    "PlainTruncatesItself": (PlainTruncatesItself, "termination vs truncation"),
    "PlainNaNReward": (PlainNaNReward, "rewards finite"),
    "PlainRendersLines": (PlainRendersLines, "render modes"),
    "PlainUnpicklable": (PlainUnpicklable, "pickle and deepcopy"),
    "PlainListsRejectedAction": (PlainListsRejectedAction, "listed valid actions accepted"),
}
for name, (cls, *_) in PLAIN_BROKEN.items():
    gym.register(f"broken/{name}-v0", entry_point=cls, max_episode_steps=10)
TEXT_ENV_ONLY = {"hostile actions answered as invalid", "rewards summed from terms", "text-env info keys"}
"""Checks of the text-env contract: skipped on a plain Gymnasium env."""


def test_plain_gymnasium_env_passes_and_skips_only_the_text_env_checks() -> None:
    results = {r.name: r for r in run_checks("plain_guess:plain/Guess-v0")}
    assert {name for name, r in results.items() if r.status == "fail"} == set()
    assert {name for name, r in results.items() if r.status == "skip"} == TEXT_ENV_ONLY | {"tabular_mdp matches sampling"}
    assert all(results[name].detail for name in TEXT_ENV_ONLY)  # the reason
    assert "each tried on a copy" in results["listed valid actions accepted"].detail


@pytest.mark.parametrize("name", sorted(PLAIN_BROKEN))
def test_broken_plain_envs_fail_their_own_check_only(name: str) -> None:
    results = run_checks(f"broken/{name}-v0")
    failed = [r.name for r in results if r.status == "fail"]
    assert failed == list(PLAIN_BROKEN[name][1:]), [(r.name, r.detail) for r in results if r.status == "fail"]
    assert all(r.fix for r in results if r.status == "fail")


def test_a_non_text_env_gets_the_checks_that_apply() -> None:
    results = {r.name: r.status for r in run_checks("CartPole-v1")}
    assert results["hostile actions handled"] == "skip" and results["listed valid actions accepted"] == "skip"
    assert results["same seed, same transcript"] == "pass" and results["pickle and deepcopy"] == "pass"


def test_example_env_is_sound() -> None:
    results = run_checks("ladder:example/Ladder-v0")
    assert [r.name for r in results if r.status != "pass"] == []
    assert_env_sound("ladder:example/Ladder-v0")


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_envs_fail_the_right_check(name: str) -> None:
    results = {r.name: r for r in run_checks(f"broken/{name}-v0")}
    expected = BROKEN[name][1]
    assert results[expected].status == "fail", results[expected]
    assert results[expected].fix
    with pytest.raises(AssertionError, match=expected):
        assert_env_sound(f"broken/{name}-v0")


def test_unknown_id_is_a_failed_row() -> None:
    [result] = run_checks("textgym/NoSuchEnv-v0")
    assert result.status == "fail" and "NoSuchEnv" in result.detail


def test_cli_checks_a_plain_env_next_to_the_user(tmp_path: Path) -> None:
    """The installed command imports ``plain_guess.py`` from the working directory, as ``python -m`` would."""
    shutil.copy(EXAMPLES / "plain_guess.py", tmp_path)
    good = textgym("check", "plain_guess:plain/Guess-v0", cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "FAIL" not in good.stdout and "not a TextEnv" in good.stdout
    bad = textgym("check", "textgym/NoSuchEnv-v0", cwd=tmp_path)
    assert bad.returncode == 1 and "FAIL" in bad.stdout
