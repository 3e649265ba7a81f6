"""10,000 hostile actions per env: ``step`` never raises and every observation stays in the space.

Most actions are listed valid actions with one word swapped for, or glued to, a hostile token
(:func:`textgym.envs.checker.hostile_action`), since random strings rarely reach the code that
echoes a name back.
"""

from __future__ import annotations

import gymnasium as gym

from textgym.envs.checker import HOSTILE_TOKENS, check_hostile_words
from textgym.envs.text import excerpt

ACTIONS_PER_ENV = 10_000


def test_hostile_actions_keep_the_contract(env_id: str) -> None:
    check_hostile_words(env_id, seed=14, actions=ACTIONS_PER_ENV)  # raises CheckFailed naming the action


def test_excerpt_is_short_printable_ascii() -> None:
    printable = gym.spaces.Text(200, min_length=0, charset=gym.make("textgym/GuessNumber-v0").observation_space.character_set)
    for text in HOSTILE_TOKENS:
        shown = excerpt(text, 20)
        assert printable.contains(shown) and len(shown.split(" (+")[0]) <= 24, repr(text)
    assert excerpt("Zoë") == "'Zo\\xeb'"
    assert excerpt("Q" * 776, 10) == "'QQQQQQQQQQ' (+766 more characters)"


def test_the_reported_failures() -> None:
    for env_id, action in [
        ("textgym/BlocksWorld-v0", "move A onto " + "Q" * 776),
        ("textgym/BlocksWorld-v0", "move A onto é"),
        ("textgym/BlocksWorld-v0", "move é onto é"),
        ("textgym/Scheduling-v0", "read_calendar Zoë"),
    ]:
        env = gym.make(env_id)
        env.reset(seed=0)
        observation, *_, info = env.step(action)
        assert info["reward_terms"]["invalid_action"] and env.observation_space.contains(observation), action[:20]
