"""10,000 hostile actions per env: ``step`` never raises and every observation stays in the space.

Random strings alone rarely reach the code that echoes a name back (``move A onto <name>``), so
most actions here are listed valid actions with one word swapped for, or glued to, a hostile token:
long, non-ASCII, control characters, digits of other scripts, names of things that do not exist.
"""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np

from textgym.envs.checker import action_rng
from textgym.envs.text import excerpt

ACTIONS_PER_ENV = 10_000
HOSTILE_TOKENS = (
    "", " ", "\n", "\t", "\x00", "\x07", "\x1b[2J", "\r\n", "\u200b", "\ud800",
    "é", "Zoë", "ß", "İ", "ﬁ", "Ω", "日本語", "🙂", "👩‍👩‍👧",
    "١٢٣٤", "٣", "１２", "Ｗ１２３４", "W١٢٣٤", "²",
    "Q" * 776, "é" * 300, "x" * 5000, "🙂" * 100,
    "Nobody", "Zed", "Z", "W9999", "unobtainium", "zzzzz", "Caturday", "99:99", "-1", "0",
    '"', "'", "\\", "()", "=", ",", "{{7*7}}", "<|im_end|>",
)
WORD = re.compile(r"(\w+)")


def hostile_action(valid: list[str], rng: np.random.Generator) -> str:
    """A listed action with one word replaced by (or glued to) a hostile token; sometimes pure noise."""
    token = HOSTILE_TOKENS[int(rng.integers(len(HOSTILE_TOKENS)))]
    kind = rng.random()
    if kind < 0.1 or not valid:
        return "".join(chr(int(c)) for c in rng.integers(0, 0x10FFFF, size=int(rng.integers(0, 30))))
    if kind < 0.2:
        return token
    parts = WORD.split(str(rng.choice(valid)))
    words = range(1, len(parts), 2)
    if not words:
        return parts[0] + token
    i = int(rng.choice(words))
    parts[i] = parts[i] + token if kind < 0.5 else token
    return "".join(parts)


def test_hostile_actions_keep_the_contract(env_id: str) -> None:
    rng = action_rng(14)
    env = gym.make(env_id)
    _, info = env.reset(seed=0)
    for _ in range(ACTIONS_PER_ENV):
        if rng.random() < 0.3 and info["valid_actions"]:  # walk on, so hostile actions meet many states
            action = str(rng.choice(info["valid_actions"]))
        else:
            action = hostile_action(info["valid_actions"], rng)
        observation, _, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(observation), f"step({excerpt(action)}) -> {excerpt(observation, 300)}"
        if terminated or truncated:
            _, info = env.reset(seed=int(rng.integers(1_000_000)))


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
