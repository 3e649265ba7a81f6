"""Guess the number: find a secret integer from "higher" / "lower" feedback."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv
from textgym.envs.mdp import Branch, TabularMDP, enumerate_mdp

GUESS = re.compile(r"(?:guess\s+)?(-?[0-9]{1,9})")
"""An action: a whole number, optionally after the word ``guess`` (matched on stripped, lower-case text)."""


def plural(count: int, noun: str) -> str:
    """``"1 guess"``, ``"2 guesses"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}es"


class Knowledge(NamedTuple):
    """What the agent knows, the state of the MDP (``info["state"]``): the secret lies in ``[lo, hi]``.

    The episode has ended once the number is ``found`` (then ``lo == hi`` is the number) or no guesses
    are left. The secret itself is not part of the state: given the feedback so far it is uniform over
    ``[lo, hi]``.
    """

    lo: int
    hi: int
    guesses_left: int
    found: bool = False


def knowledge_text(state: Knowledge) -> str:
    """The text view of ``state``: the open interval and the guesses left, or the end of the game."""
    if state.found:
        return f"The game is over. The number was {state.lo}."
    if state.guesses_left == 0:
        return "The game is over."
    interval = (f"The number is {state.lo}." if state.lo == state.hi
                else f"The number is between {state.lo} and {state.hi}.")
    return f"{interval} {plural(state.guesses_left, 'guess')} left."


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
    When the guesses run out, the feedback reveals the number. ``info["state"]`` is the
    :class:`Knowledge` tuple ``(lo, hi, guesses_left, found)``: what the feedback implies, not the secret.

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
    The base keys (``valid_actions``, ``reward_terms``, ``success``, ``invalid_actions``), ``state``
    (the :class:`Knowledge` tuple), ``interval`` (the open interval ``(lo, hi)`` that the feedback
    implies; the number itself once found) and ``guesses_left``.

    ## Arguments
    ``gym.make("textgym/GuessNumber-v0", low=1, high=16, max_guesses=6, reward={"ruled_out": -0.1})``.
    ``env.unwrapped.tabular_mdp()`` exports the exact MDP over :class:`Knowledge` states.

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
        self._start = Knowledge(low, high, max_guesses)
        self.state = self._start
        self.target = low

    def _reset(self, options: dict[str, Any] | None) -> None:
        self.target = int(self.np_random.integers(self.low, self.high + 1))
        self.state = self._start

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

    @staticmethod
    def branches(state: Knowledge, guess: int) -> list[Branch]:
        """The MDP: what ``guess`` can lead to from ``state``, for a secret uniform in ``[lo, hi]``.

        The branches split the open interval by the feedback the secret would give (found, higher,
        lower), each with its share of the interval as probability. Shared by ``_step`` and
        :meth:`tabular_mdp`.
        """
        lo, hi, left, _ = state
        terms = {} if lo <= guess <= hi else {"ruled_out": 1}
        # the guess budget is a game rule (termination); the step limit truncates (Gymnasium's TimeLimit)
        out_of_guesses = left == 1
        found = [Knowledge(guess, guess, left - 1, True)] if lo <= guess <= hi else []
        higher = Knowledge(max(lo, guess + 1), hi, left - 1)  # the secret is above the guess
        lower = Knowledge(lo, min(hi, guess - 1), left - 1)
        size = hi - lo + 1
        missed = {**terms, "failure": 1} if out_of_guesses else terms
        return [Branch(1 / size, s, {**terms, "success": 1}, True, True) for s in found] + [
            Branch((s.hi - s.lo + 1) / size, s, missed, out_of_guesses)
            for s in (higher, lower)
            if s.lo <= s.hi
        ]

    def _step(self, action: int) -> Outcome:
        # The branches partition the open interval, so the secret drawn at reset lies in exactly one
        # of them, and that one happens. Given the feedback so far, a secret drawn uniformly at reset is
        # uniform over the open interval (each feedback keeps or drops whole numbers alike), so each
        # branch happens with its share of the interval: the probability tabular_mdp() gives it.
        branches = self.branches(self.state, action)
        branch = next(b for b in branches if b.next_state.lo <= self.target <= b.next_state.hi)
        self.state = branch.next_state
        if branch.success:
            used = self.max_guesses - self.state.guesses_left
            message = f"{action} is correct! You found it in {plural(used, 'guess')}."
        elif action < self.target:
            message = f"{action} is too low: the number is higher."
        else:
            message = f"{action} is too high: the number is lower."
        if branch.terminated and not branch.success:
            message += f" You are out of guesses: the number was {self.target}."
        return Outcome(message, dict(branch.terms), branch.terminated, branch.success)

    def describe(self) -> str:
        return knowledge_text(self.state)

    def valid_actions(self) -> list[str]:
        return list(self._all_numbers)

    def _info(self) -> dict[str, Any]:
        lo, hi, left, _ = self.state
        return {"state": self.state, "interval": (lo, hi), "guesses_left": left}

    def oracle_action(self) -> str:
        """Binary search: the middle of the open interval (reads no hidden state)."""
        return str((self.state.lo + self.state.hi) // 2)

    def tabular_mdp(self) -> TabularMDP:
        """The exact MDP over :class:`Knowledge` states, with rewards from this env's reward spec.

        It has about ``n**2 * max_guesses / 2`` states of ``n`` actions each for ``n = high - low + 1``
        numbers: instant for the registered ranges, slow past a few hundred numbers.
        """
        return enumerate_mdp(
            {self._start: 1.0},
            lambda state: self._all_numbers,
            lambda state, action: self.branches(state, int(action)),
            knowledge_text,
            self.reward,
        )
