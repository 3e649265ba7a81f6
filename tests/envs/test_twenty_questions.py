"""TwentyQuestions-specific properties: the shipped table, the oracle, the parser, turns and reward terms."""

from __future__ import annotations

import string

import gymnasium as gym
import numpy as np
import pytest
from episodes import oracle, play, random_valid, success_rate

from textgym.envs.base import InvalidAction
from textgym.envs.twenty_questions import Ask, Guess, load_table, parse_move

ENV_ID = "textgym/TwentyQuestions-v0"
TABLE = load_table()


def policy_success(policy: str, episodes: int = 300, **kwargs: object) -> float:
    choose = oracle if policy == "oracle" else random_valid(np.random.default_rng(0))
    return success_rate(gym.make(ENV_ID, **kwargs), choose, episodes)


def test_table_is_unique_and_ascii() -> None:
    assert len(TABLE.objects) == 72 and len(TABLE.attributes) == 22
    assert len(set(TABLE.signatures)) == len(TABLE.objects)
    text = " ".join(TABLE.objects + TABLE.questions + TABLE.attributes)
    assert set(text) <= set(string.printable)


def test_oracle_always_finds_the_object_within_nine_turns() -> None:
    env = gym.make(ENV_ID)
    turns = []
    for seed in range(300):
        steps = play(env, seed, oracle)
        assert steps[-1].info["success"]
        assert all("wrong_guess" not in step.info["reward_terms"] for step in steps)
        turns.append(len(steps))
    assert max(turns) == 9 and 7 <= np.mean(turns) <= 8  # measured: at most 9, mean 7.5


def test_oracle_under_tighter_budgets() -> None:
    assert policy_success("oracle", max_questions=9) == 1.0
    assert 0.85 <= policy_success("oracle", max_questions=8) < 1.0  # measured 0.94
    assert policy_success("oracle", num_objects=16, max_questions=6) >= 0.98  # measured 0.996


def test_random_policy_rarely_succeeds() -> None:
    assert policy_success("random", 200) <= 0.3  # measured 0.18


@pytest.mark.parametrize(
    "text",
    ["ask: is it alive?", "ASK:  Is It Alive", "ask is it alive?", " ask:is it alive?? ", "ask: is_alive"],
)
def test_parse_question_variants(text: str) -> None:
    assert parse_move(text, TABLE) == Ask(TABLE.attributes.index("is_alive"))


@pytest.mark.parametrize(
    "text", ["guess: teddy bear", "Guess:Teddy  Bear.", "guess a teddy bear", "guess: the teddy bear"]
)
def test_parse_guess_variants(text: str) -> None:
    assert parse_move(text, TABLE) == Guess(TABLE.objects.index("teddy bear"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("is it alive?", "write 'ask: '"),
        ("asks: is it alive?", "write 'ask: '"),
        ("question: is it alive?", "write 'ask: '"),
        ("ask: is it aliv?", "unknown question"),
        ("ask:", "unknown question"),
        ("ask: is it a dog?", "unknown question"),
        ("guess: dogg", "unknown object"),
        ("guess:", "unknown object"),
        ("guess: is it alive?", "unknown object"),
    ],
)
def test_parse_rejects_near_misses(text: str, reason: str) -> None:
    with pytest.raises(InvalidAction, match=reason):
        parse_move(text, TABLE)


def test_answers_are_true_and_recorded() -> None:
    env = gym.make(ENV_ID)
    env.reset(seed=5)
    secret = TABLE.signatures[env.unwrapped.secret]
    for attribute, question in enumerate(TABLE.questions[:5]):
        observation, reward, terminated, _, info = env.step(f"ask: {question}")
        answer = "yes" if secret >> attribute & 1 else "no"
        assert observation.startswith(f"{question.capitalize()} {answer.capitalize()}.")
        assert f"- {question} {answer}\n" in observation
        assert (reward, terminated, info["turns_left"]) == (0.0, False, 19 - attribute)
        assert f"ask: {question}" not in info["valid_actions"]
    observation, *_, info = env.step(f"ask: {TABLE.questions[0]}")
    assert "you already asked 'is it alive?'" in observation and info["turns_left"] == 15


def test_wrong_guess_costs_and_the_game_goes_on() -> None:
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    wrong = next(name for name in TABLE.objects if TABLE.object_index[name] != env.unwrapped.secret)
    observation, reward, terminated, _, info = env.step(f"guess: {wrong}")
    assert observation.startswith(f"Wrong: the secret object is not {wrong}.")
    assert f"Wrong guesses: {wrong}." in observation
    assert (reward, info["reward_terms"], terminated) == (-0.1, {"step": 0.0, "wrong_guess": -0.1}, False)
    assert f"guess: {wrong}" not in info["valid_actions"] and info["turns_left"] == 19
    observation, *_, info = env.step(f"guess: {wrong}")
    assert "already guessed" in observation and info["reward_terms"]["invalid_action"] == -0.1


def test_right_guess_succeeds() -> None:
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    name = TABLE.objects[env.unwrapped.secret]
    observation, reward, terminated, _, info = env.step(f"guess: {name}")
    assert observation.startswith(f"Right: the secret object is {name}.")
    assert (reward, terminated, info["success"], info["valid_actions"]) == (1.0, True, True, [])


def test_spent_budget_fails_and_reveals_the_secret() -> None:
    env = gym.make(ENV_ID, max_questions=2, reward={"failure": -1.0})
    env.reset(seed=0)
    name = TABLE.objects[env.unwrapped.secret]
    assert not env.step("ask: is it alive?")[2]
    observation, reward, terminated, _, info = env.step("ask: is it round?")
    assert terminated and not info["success"] and reward == -1.0
    assert f"You have no turns left: the secret object was {name}." in observation
    wrong = next(name for name in TABLE.objects if TABLE.object_index[name] != env.unwrapped.secret)
    env.reset(seed=0)
    env.step("ask: is it alive?")
    *_, info = env.step(f"guess: {wrong}")
    assert info["reward_terms"] == {"step": 0.0, "wrong_guess": -0.1, "failure": -1.0}


def test_num_objects_knob() -> None:
    env = gym.make(ENV_ID, num_objects=8)
    in_play_sets = set()
    for seed in range(10):
        observation, info = env.reset(seed=seed)
        guesses = [a.removeprefix("guess: ") for a in info["valid_actions"] if a.startswith("guess: ")]
        assert len(guesses) == 8 and observation.startswith(f"Objects in play (8): {', '.join(guesses)}.")
        assert TABLE.objects[env.unwrapped.secret] in guesses
        in_play_sets.add(tuple(guesses))
    assert len(in_play_sets) == 10
    outsider = next(name for name in TABLE.objects if name not in guesses)
    observation, *_ = env.step(f"guess: {outsider}")
    assert f"{outsider} is not one of the objects in play" in observation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_questions": 0}, "max_questions=0 leaves no turn"),
        ({"num_objects": 1}, "num_objects=1 is out of range: give 2 to 72"),
        ({"num_objects": 100}, "num_objects=100 is out of range"),
    ],
)
def test_bad_kwargs_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make(ENV_ID, **kwargs)


def test_fixed_seed_transcript() -> None:
    steps = play(gym.make(ENV_ID), 0, oracle)
    assert play(gym.make(ENV_ID), 0, oracle) == steps
    questions = [
        "can you hold it in one hand?",
        "is it usually found outdoors?",
        "is it alive?",
        "is it found in water?",
        "is it an animal?",
        "is it a mammal?",
        "can it fly?",
    ]
    assert [step.action for step in steps] == [f"ask: {q}" for q in questions] + ["guess: snake"]
    first, last = steps[0].observation, steps[-1].observation
    assert first.startswith("Can you hold it in one hand? No.\nObjects in play (72): airplane, ant,")
    assert last.endswith("- can it fly? no\nWrong guesses: none.\nTurns left: 12 of 20.")
    env = gym.make(ENV_ID)
    secrets = set()
    for seed in range(20):
        env.reset(seed=seed)
        secrets.add(env.unwrapped.secret)
    assert len(secrets) > 10  # the seed draws the secret
