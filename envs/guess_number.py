"""Guess the number: find a secret integer from "higher" / "lower" feedback."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv

GUESS = re.compile(r"(?:guess\s+)?(-?[0-9]{1,9})")
"""An action: a whole number, optionally after the word ``guess`` (matched on stripped, lower-case text)."""


def plural(count: int, noun: str) -> str:
    """``"1 guess"``, ``"2 guesses"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}es"


@dataclass
class GuessNumberReward(RewardSpec):
    """GuessNumber's reward weights; the defaults pay 1 for finding the number and nothing else."""

    ruled_out: float = 0.0
    """Paid for guessing a number that earlier feedback already ruled out (repeats included)."""


class GuessNumberEnv(TextEnv[int]):
    """Find a secret whole number from ``low`` to ``high`` within ``max_guesses`` guesses.

    ## Description
    The env draws a secret integer uniformly from ``[low, high]``. After each guess it says whether
    the secret is higher or lower, and the observation states the interval that the feedback so far
    leaves open. Binary search always wins when ``max_guesses >= ceil(log2(high - low + 2))``
    (5 guesses for the default 16 numbers).

    ## Action Space
    A whole number from ``low`` to ``high``, bare (``8``, the canonical form: numbers are single
    tokens for small LLMs) or after the word ``guess`` (``guess 8``); case and surrounding spaces are
    ignored. Anything else, and numbers outside ``[low, high]``, are invalid actions: they do not use
    up a guess. ``info["valid_actions"]`` lists the whole range ``low..high`` in order, not only the
    numbers still possible, so a policy choosing from it can make (and learn to avoid) ruled-out
    guesses.

    ## Observation Space
    The last guess's feedback, then the open interval and the guesses left, e.g.
    ``"8 is too low: the number is higher.\\nThe number is between 9 and 16. 5 guesses left."``

    ## Starting State
    A secret drawn uniformly from ``[low, high]``; the open interval is the whole range.

    ## Rewards
    Terms of :class:`GuessNumberReward`: ``success`` (find the number, 1.0), ``failure`` (run out of
    guesses, 0.0), ``step`` (every step, 0.0), ``invalid_action`` (-0.1), ``ruled_out`` (a guess
    outside the open interval, 0.0).

    ## Episode End
    Terminated when the number is found (success) or the last guess misses (failure). Truncated by
    the registered step limit (50 steps, invalid actions included) and by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``, ``reward_terms``, ``success``, ``invalid_actions``), ``interval``
    (the open interval ``(lo, hi)`` that the feedback implies) and ``guesses_left``.

    ## Arguments
    ``gym.make("textgym/GuessNumber-v0", low=1, high=16, max_guesses=6, reward={"ruled_out": -0.1})``.

    ## Version History
    * v0: initial version.
    """

    reward_spec = GuessNumberReward
    max_observation_length = 1024

    def __init__(self, low: int = 1, high: int = 16, max_guesses: int = 6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, value in (("low", low), ("high", high), ("max_guesses", max_guesses)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
        if not -(10**8) <= low < high <= 10**8:
            raise ValueError(f"need -10**8 <= low < high <= 10**8, got low={low}, high={high}")
        if max_guesses < 1:
            raise ValueError(f"max_guesses must be >= 1, got {max_guesses}")
        self.low, self.high, self.max_guesses = low, high, max_guesses
        self._all_numbers = [str(n) for n in range(low, high + 1)]
        self.instructions = (
            f"I am thinking of a whole number from {low} to {high}. Find it in at most "
            f"{plural(max_guesses, 'guess')}. After each guess I tell you whether my number is higher "
            f"or lower. Answer with the number only, e.g. {(low + high) // 2}."
        )
        self.target = self.lo = low
        self.hi = high
        self.guesses_left = max_guesses
        self.found = False

    def _reset(self, options: dict[str, Any] | None) -> None:
        self.target = int(self.np_random.integers(self.low, self.high + 1))
        self.lo, self.hi = self.low, self.high
        self.guesses_left = self.max_guesses
        self.found = False

    def parse_action(self, text: str) -> int:
        match = GUESS.fullmatch(text.strip().lower())
        if match is None:
            raise InvalidAction(
                f"expected a whole number from {self.low} to {self.high}, "
                f"like '{self.low}' or 'guess {self.low}'"
            )
        number = int(match.group(1))
        if not self.low <= number <= self.high:
            raise InvalidAction(f"{number} is outside the range {self.low} to {self.high}")
        return number

    def _step(self, action: int) -> Outcome:
        terms = {} if self.lo <= action <= self.hi else {"ruled_out": 1}
        self.guesses_left -= 1
        if action == self.target:
            self.found = True
            used = self.max_guesses - self.guesses_left
            return Outcome(f"{action} is correct! You found it in {plural(used, 'guess')}.",
                           {**terms, "success": 1}, terminated=True, success=True)
        if action < self.target:
            self.lo = max(self.lo, action + 1)
            message = f"{action} is too low: the number is higher."
        else:
            self.hi = min(self.hi, action - 1)
            message = f"{action} is too high: the number is lower."
        # the guess budget is a game rule (termination); the step limit truncates (Gymnasium's TimeLimit)
        if self.guesses_left == 0:
            return Outcome(f"{message} You are out of guesses.", {**terms, "failure": 1}, terminated=True)
        return Outcome(message, terms)

    def describe(self) -> str:
        if self.found or self.guesses_left == 0:
            return f"The game is over. The number was {self.target}."
        interval = (f"The number is {self.lo}." if self.lo == self.hi
                    else f"The number is between {self.lo} and {self.hi}.")
        return f"{interval} {plural(self.guesses_left, 'guess')} left."

    def valid_actions(self) -> list[str]:
        return list(self._all_numbers)

    def _info(self) -> dict[str, Any]:
        return {"interval": (self.lo, self.hi), "guesses_left": self.guesses_left}

    def oracle_action(self) -> str:
        """Binary search: the middle of the open interval (reads no hidden state)."""
        return str((self.lo + self.hi) // 2)
