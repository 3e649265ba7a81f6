"""Wordle's own properties: duplicate-letter feedback, the word lists, the solver, parser and knobs."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from episodes import oracle, oracle_observations, play, random_valid, success_rate

from textgym.envs.base import InvalidAction
from textgym.envs.wordle import WordleEnv, feedback, lexicon, render

ID = "textgym/Wordle-v0"


@pytest.mark.parametrize(
    ("guess", "answer", "marks"),
    [("crane", "crane", "G G G G G"), ("speed", "abide", ". . Y . Y"), ("eerie", "there", "Y . Y . G"),
     ("abbey", "babes", "Y Y G G ."), ("llama", "hello", "Y Y . . ."), ("lolly", "hello", ". Y G G ."),
     ("slate", "crane", ". . G . G")],
)
def test_feedback_handles_duplicate_letters(guess: str, answer: str, marks: str) -> None:
    assert render(guess, feedback(guess, answer)) == f"{guess.upper()} -> {marks}"


def test_table_matches_feedback() -> None:
    words = lexicon()
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(len(words.allowed), size=3000), rng.integers(len(words.answers), size=3000)
    for row, col in zip(rows, cols, strict=True):
        assert words.table[row, col] == feedback(words.allowed[row], words.answers[col])


def test_word_lists() -> None:
    words = lexicon()
    assert len(words.answers) == 648 and len(words.allowed) == 2530
    assert all(re.fullmatch("[a-z]{5}", word) for word in words.allowed)
    assert len(set(words.allowed)) == len(words.allowed)
    assert words.allowed[: len(words.answers)] == words.answers


@pytest.mark.parametrize("kwargs", [{}, {"hard_mode": True}, {"num_answers": 140}, {"max_guesses": 5}])
def test_oracle_always_wins(kwargs: dict) -> None:
    env = gym.make(ID, **kwargs)
    episodes = [play(env, seed, oracle) for seed in range(200)]
    assert all(episode[-1].info["success"] for episode in episodes)
    assert np.mean([len(episode) for episode in episodes]) < 3.5


def test_random_listed_words_mostly_lose() -> None:
    """Random picks from the listing (half of it ruled out) win about 0.3 of the games."""
    rate = success_rate(gym.make(ID), random_valid(np.random.default_rng(0)), 200)
    assert 0.1 < rate < 0.5


@pytest.mark.parametrize(
    ("text", "word"), [("crane", "crane"), (" CRANE\n", "crane"), ("Vinyl", "vinyl"), ("birds", "birds")]
)
def test_parser_accepts(text: str, word: str) -> None:
    assert lexicon().allowed[WordleEnv().parse_action(text)] == word


@pytest.mark.parametrize(
    ("text", "reason"),
    [("cran", "5-letter word"), ("cranes", "5-letter word"), ("cr4ne", "5-letter word"),
     ("guess crane", "5-letter"), ("cr ne", "5-letter"), ("\u00e9clat", "5-letter"), ("", "5-letter"),
     ("zzzzz", "'zzzzz' is not in the word list")],
)
def test_parser_rejects_with_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAction, match=reason):
        WordleEnv().parse_action(text)


def consistent(history: list[tuple[str, int]], words: list[str]) -> set[str]:
    return {w for w in words if all(feedback(guess, w) == pattern for guess, pattern in history)}


@pytest.mark.parametrize("hard_mode", [False, True])
def test_listing_is_a_bounded_mix_and_always_accepted(hard_mode: bool) -> None:
    env = gym.make(ID, hard_mode=hard_mode, listed_words=10)
    answers = lexicon().answers
    for seed in range(30):
        _, info = env.reset(seed=seed)
        secret, history = answers[env.unwrapped.answer], []
        while True:
            listed = info["valid_actions"]
            possible = consistent(history, answers)
            assert listed == sorted(listed) and len(listed) == min(10, len(possible) if hard_mode else 10)
            assert len(possible & set(listed)) >= min(5, len(possible))
            assert info["candidates"] == len(possible)
            if hard_mode:
                assert set(listed) <= possible
            guess = listed[seed % len(listed)]
            *_, terminated, _, info = env.step(guess)
            assert "invalid_action" not in info["reward_terms"]
            history.append((guess, feedback(guess, secret)))
            if terminated:
                break


def test_hard_mode_rejects_guesses_that_ignore_the_marks() -> None:
    env = gym.make(ID, hard_mode=True)
    env.reset(seed=0)  # the secret is "stair"
    env.step("trace")
    observation, *_, info = env.step("vinyl")
    assert observation.startswith("Invalid action 'vinyl': hard mode") and info["guesses_left"] == 5
    assert "invalid_action" not in env.step("stair")[4]["reward_terms"]


def test_inconsistent_term() -> None:
    env = gym.make(ID, reward={"inconsistent": -0.3})
    env.reset(seed=0)  # the secret is "stair"
    assert env.step("trace")[4]["reward_terms"] == {"step": 0.0}
    assert env.step("vinyl")[4]["reward_terms"] == {"step": 0.0, "inconsistent": -0.3}  # a probe word
    assert env.step("trace")[4]["reward_terms"] == {"step": 0.0, "inconsistent": -0.3}  # an answer, ruled out
    assert env.step("stair")[4]["reward_terms"] == {"step": 0.0, "success": 1.0}


def test_running_out_of_guesses_fails() -> None:
    env = gym.make(ID, max_guesses=2, reward={"failure": -1.0})
    env.reset(seed=0)
    assert not env.step("about")[2]
    observation, reward, terminated, _, info = env.step("about")
    assert terminated and not info["success"] and reward == -1.0
    assert observation.endswith("The game is over. The word was STAIR.")


def test_num_answers_limits_the_secret() -> None:
    env = gym.make(ID, num_answers=10)
    secrets = set()
    for seed in range(100):
        env.reset(seed=seed)
        secrets.add(env.unwrapped.answer)
    assert secrets == set(range(10))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_answers": 1}, "num_answers"), ({"num_answers": 10_000}, "num_answers"),
     ({"max_guesses": 0}, "max_guesses"), ({"listed_words": 1}, "listed_words")],
)
def test_bad_kwargs_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WordleEnv(**kwargs)


def test_fixed_seed_transcript() -> None:
    assert oracle_observations(ID, 0, 3) == [
        "No guesses yet.\n6 guesses left.",
        "TRACE is not it.\nTRACE -> Y Y G . .\n5 guesses left.",
        "SMART is not it.\nTRACE -> Y Y G . .\nSMART -> G . G Y Y\n4 guesses left.",
        "STAIR is correct! Solved in 3 guesses.\nTRACE -> Y Y G . .\nSMART -> G . G Y Y\nSTAIR -> G G G G G\n"
        "The game is over: you found the word.",
    ]
