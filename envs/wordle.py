"""Wordle: find a secret 5-letter word from per-letter green / yellow / gray feedback."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, NamedTuple

import numpy as np

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv, excerpt

WORD_LENGTH = 5
GRAY, YELLOW, GREEN = 0, 1, 2
MARKS = ".YG"
"""How each mark is shown, indexed by its value."""
POWERS = tuple(3**i for i in range(WORD_LENGTH))
"""A pattern is one int: the sum of ``mark_i * 3**i`` over letter positions ``i``."""
SOLVED = GREEN * sum(POWERS)
PATTERNS = 3**WORD_LENGTH
WORD = re.compile(r"[a-z]+")
LEGEND = "G = right letter, right spot; Y = in the word, wrong spot; . = not in the word"


def feedback(guess: str, answer: str) -> int:
    """The pattern of ``guess`` against ``answer``, duplicates as in Wordle.

    Greens first; then, left to right, a letter is yellow while the answer has unmatched copies of it
    left, and gray once they are used up (so ``speed`` against ``abide`` is ``. . Y . Y``).
    """
    marks = [GRAY] * WORD_LENGTH
    spare: dict[str, int] = {}
    for i, (g, a) in enumerate(zip(guess, answer, strict=True)):
        if g == a:
            marks[i] = GREEN
        else:
            spare[a] = spare.get(a, 0) + 1
    for i, g in enumerate(guess):
        if marks[i] == GRAY and spare.get(g, 0):
            marks[i] = YELLOW
            spare[g] -= 1
    return sum(m * p for m, p in zip(marks, POWERS, strict=True))


def render(guess: str, pattern: int) -> str:
    """``"CRANE -> G Y . . G"``."""
    return f"{guess.upper()} -> {' '.join(MARKS[pattern // p % 3] for p in POWERS)}"


def feedback_table(guesses: list[str], answers: list[str]) -> np.ndarray:
    """``table[g, a] == feedback(guesses[g], answers[a])`` for every pair, computed with numpy."""
    g = np.array([[ord(c) for c in w] for w in guesses], dtype=np.uint8)[:, None, :]
    a = np.array([[ord(c) for c in w] for w in answers], dtype=np.uint8)[None, :, :]
    green = g == a  # (guesses, answers, positions)
    table = np.zeros(green.shape[:2], dtype=np.uint8)
    for i in range(WORD_LENGTH):
        # copies of guess letter i among the answer's non-green letters, minus those earlier
        # non-green copies in the guess have taken as yellows
        spare = ((a == g[:, :, i : i + 1]) & ~green).sum(axis=2)
        taken = ((g[:, :, :i] == g[:, :, i : i + 1]) & ~green[:, :, :i]).sum(axis=2)
        yellow = ~green[:, :, i] & (spare > taken)
        table += (GREEN * green[:, :, i] + YELLOW * yellow).astype(np.uint8) * POWERS[i]
    return table


def read_words(name: str) -> list[str]:
    """A shipped word list from ``textgym/envs/data`` (one word a line, ``#`` lines are comments)."""
    text = (files("textgym.envs") / "data" / name).read_text(encoding="ascii")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


class Lexicon(NamedTuple):
    """The shipped words: answers (most familiar first), every allowed guess, and their feedback table."""

    answers: list[str]
    allowed: list[str]
    """Answers first (row ``i < len(answers)`` is answer ``i``), then the other allowed guesses."""
    index: dict[str, int]
    """Row of each allowed word."""
    table: np.ndarray
    """``table[row, a]``: the pattern of allowed word ``row`` against answer ``a``."""


@functools.cache
def lexicon() -> Lexicon:
    """The word lists and feedback table, built once per process (about 0.3 s)."""
    answers = read_words("wordle_answers.txt")
    allowed = answers + read_words("wordle_guesses.txt")
    return Lexicon(answers, allowed, {w: i for i, w in enumerate(allowed)}, feedback_table(allowed, answers))


def spread(items: np.ndarray, count: int) -> list[int]:
    """``count`` evenly spaced entries of ``items`` (all of them if there are no more)."""
    count = min(count, len(items))
    return [int(items[i * len(items) // count]) for i in range(count)]


def guesses(count: int) -> str:
    """``"1 guess"``, ``"2 guesses"``."""
    return f"{count} guess" if count == 1 else f"{count} guesses"


@dataclass
class WordleReward(RewardSpec):
    """Wordle's reward weights; the defaults pay 1 for finding the word and nothing else."""

    inconsistent: float = 0.0
    """Paid for a guess that earlier feedback has ruled out as the answer (probing guesses included)."""


class WordleEnv(TextEnv[int]):
    """Find a secret 5-letter word in ``max_guesses`` guesses from per-letter feedback.

    ## Description
    Wordle. The secret is drawn uniformly from the first ``num_answers`` words of the shipped answer
    list (648 common words, the 140 most familiar first). Each guess must be an allowed word (the
    answers plus 1,882 other words and plurals, 2,530 in all). Each letter of a guess is then marked
    ``G`` (right letter, right spot), ``Y`` (in the word, wrong spot) or ``.`` (not in the word, or
    guessed more times than it occurs: greens take copies first, then yellows left to right).

    ## Action Space
    An allowed 5-letter word (case and surrounding spaces ignored). Other text, and in
    ``hard_mode`` a guess inconsistent with the feedback so far, is an invalid action and uses no
    guess. ``info["valid_actions"]`` is a sample, not the whole list: up to ``listed_words`` answers,
    sorted alphabetically, of which at least half (all when fewer remain) are still consistent with
    the feedback; the rest are answers already ruled out (none in ``hard_mode``). Both parts are evenly
    spaced through the answer list, so the sample depends on the feedback only. Every allowed word is
    accepted, listed or not.

    ## Observation Space
    The last guess's result, then one line per guess (``CRANE -> G Y . . G``) and the guesses left.

    ## Starting State
    A secret drawn uniformly from the answer pool; no guesses yet.

    ## Rewards
    Terms of :class:`WordleReward`: ``success`` (find the word, 1.0), ``failure`` (run out of guesses,
    0.0), ``step`` (every step, 0.0), ``invalid_action`` (-0.1), ``inconsistent`` (a guess that the
    earlier feedback rules out as the answer, 0.0; note that such probing guesses can be good play).

    ## Episode End
    Terminated when the word is found (success) or the last guess misses (failure). Truncated by the
    registered step limit (50 steps, invalid actions included) and by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``, ``reward_terms``, ``success``, ``invalid_actions``),
    ``guesses_left`` and ``candidates`` (how many pool answers are still consistent with the feedback).

    ## Arguments
    ``gym.make("textgym/Wordle-v0", max_guesses=6, num_answers=None, hard_mode=False,
    listed_words=12)``; ``num_answers`` (default: all 648) keeps the first, most familiar answers;
    ``hard_mode`` requires every guess to be consistent with all feedback so far (stricter than the
    NYT rule, which only asks to reuse revealed letters). Hard mode is harder for free-text policies
    only: its listing holds consistent answers alone, so picking from it wins nearly always.

    ## Version History
    * v0: initial version.
    """

    reward_spec = WordleReward

    def __init__(
        self,
        max_guesses: int = 6,
        num_answers: int | None = None,
        hard_mode: bool = False,
        listed_words: int = 12,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        words = lexicon()
        total = len(words.answers)
        num_answers = total if num_answers is None else num_answers
        if not 2 <= num_answers <= total:
            raise ValueError(f"num_answers must be from 2 to {total} (or None for all), got {num_answers}")
        if max_guesses < 1:
            raise ValueError(f"max_guesses must be >= 1, got {max_guesses}")
        if listed_words < 2:
            raise ValueError(f"listed_words must be >= 2 (valid actions to show), got {listed_words}")
        self.words = words
        self.max_guesses, self.num_answers = max_guesses, num_answers
        self.hard_mode, self.listed_words = hard_mode, listed_words
        self._table = words.table[:, :num_answers]
        self.instructions = (
            f"Guess the secret 5-letter English word in at most {max_guesses} guesses. Each guess must be "
            f"a real 5-letter word. After each guess every letter is marked: {LEGEND} (or guessed more "
            "often than it occurs). "
            + ("Hard mode: every guess must fit all the marks so far. " if hard_mode else "")
            + "Answer with the word only, e.g. crane."
        )
        self.answer = 0
        self.history: list[tuple[int, int]] = []
        self._alive = np.ones(num_answers, dtype=bool)
        self._listed: list[str] = []
        self._opening: int | None = None

    def _reset(self, options: dict[str, Any] | None) -> None:
        self.answer = int(self.np_random.integers(self.num_answers))
        self.history = []
        self._alive = np.ones(self.num_answers, dtype=bool)
        self._listed = self._listing()

    def parse_action(self, text: str) -> int:
        word = text.strip().lower()
        if len(word) != WORD_LENGTH or not WORD.fullmatch(word):
            raise InvalidAction("expected a 5-letter word (letters a-z only), like 'crane'")
        row = self.words.index.get(word)
        if row is None:
            raise InvalidAction(f"{excerpt(word)} is not in the word list")
        return row

    def _step(self, action: int) -> Outcome:
        consistent = self._consistent(action)
        if self.hard_mode and not consistent:
            raise InvalidAction("hard mode: the guess must fit every mark so far")
        pattern = int(self._table[action, self.answer])
        self.history.append((action, pattern))
        self._alive &= self._table[action] == pattern
        self._listed = self._listing()
        terms = {} if consistent else {"inconsistent": 1}
        word = self.words.allowed[action].upper()
        if pattern == SOLVED:
            message = f"{word} is correct! Solved in {guesses(len(self.history))}."
            return Outcome(message, {**terms, "success": 1}, terminated=True, success=True)
        # the guess budget is a game rule (termination); the step limit truncates (Gymnasium's TimeLimit)
        if len(self.history) == self.max_guesses:
            message = f"{word} is not it, and you are out of guesses."
            return Outcome(message, {**terms, "failure": 1}, terminated=True)
        return Outcome(f"{word} is not it.", terms)

    def _consistent(self, row: int) -> bool:
        """Whether allowed word ``row`` could be the answer given the feedback so far."""
        if row < self.num_answers:
            return bool(self._alive[row])
        word = self.words.allowed[row]
        return all(feedback(self.words.allowed[g], word) == p for g, p in self.history)

    def _listing(self) -> list[str]:
        """``info["valid_actions"]``: consistent answers (at least half), then ruled-out ones."""
        alive = np.flatnonzero(self._alive)
        # ruled-out answers are inadmissible in hard mode, so none are listed there
        dead = alive[:0] if self.hard_mode else np.flatnonzero(~self._alive)
        keep = min(len(alive), max(self.listed_words // 2, self.listed_words - len(dead)))
        rows = spread(alive, keep) + spread(dead, self.listed_words - keep)
        return sorted([self.words.answers[r] for r in rows])

    def describe(self) -> str:
        lines = [render(self.words.allowed[g], p) for g, p in self.history] or ["No guesses yet."]
        left = self.max_guesses - len(self.history)
        if self.history and self.history[-1][1] == SOLVED:
            lines.append("The game is over: you found the word.")
        elif left == 0:
            lines.append(f"The game is over. The word was {self.words.answers[self.answer].upper()}.")
        else:
            lines.append(f"{guesses(left)} left.")
        return "\n".join(lines)

    def valid_actions(self) -> list[str]:
        return list(self._listed)

    def _info(self) -> dict[str, Any]:
        left = self.max_guesses - len(self.history)
        return {"guesses_left": left, "candidates": int(np.count_nonzero(self._alive))}

    def oracle_action(self) -> str:
        """A greedy solver: the guess whose feedback splits the consistent answers most evenly."""
        if self.history:
            return self.words.allowed[self._best_guess()]
        if self._opening is None:  # the first guess depends only on the answer pool: find it once
            self._opening = self._best_guess()
        return self.words.allowed[self._opening]

    def _best_guess(self) -> int:
        """Maximise the entropy of the pattern over the consistent answers, plus the chance of a win now.

        Any allowed word may probe (only consistent answers in hard mode); with one or two answers
        left it guesses an answer.
        """
        alive = np.flatnonzero(self._alive)
        if len(alive) <= 2:
            return int(alive[0])
        rows = alive if self.hard_mode else np.arange(len(self.words.allowed))
        patterns = self._table[np.ix_(rows, alive)].astype(np.int64)
        patterns += PATTERNS * np.arange(len(rows))[:, None]
        counts = np.bincount(patterns.ravel(), minlength=PATTERNS * len(rows)).reshape(len(rows), PATTERNS)
        p = counts / len(alive)
        entropy = -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=1)
        win_now = np.isin(rows, alive)
        return int(rows[np.argmax(entropy + win_now / len(alive))])
