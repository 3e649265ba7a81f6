"""Nim on one heap (a subtraction game): take 1 to 3 stones, whoever takes the last stone wins."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from textgym.envs.base import InvalidAction
from textgym.envs.two_player import MinimaxGame, Scripted, TwoPlayerEnv, make_aec, uniform

if TYPE_CHECKING:
    from pettingzoo import AECEnv

MAX_TAKE = 3
HEAPS = tuple(range(5, 13))
"""The heap sizes a game may start with, equally likely (the first player loses a multiple of 4 against
perfect play)."""


class State(NamedTuple):
    """Stones left and the seat to move; ``last`` is the seat that took the last stones (the winner at 0)."""

    stones: int
    mover: int
    last: int = -1


class Opponent(Enum):
    """Who plays the other seat."""

    RANDOM = "random"
    MINIMAX = "minimax"


class Nim(MinimaxGame[State]):
    """The rules of one-heap Nim: take 1 to 3 stones in turn; whoever takes the last stone wins."""

    name = "nim"
    actions = tuple(str(n) for n in range(1, MAX_TAKE + 1))
    max_observation_length = 256

    def starts(self, first: int) -> tuple[tuple[float, State], ...]:
        return tuple((1 / len(HEAPS), State(heap, first)) for heap in HEAPS)

    def to_move(self, state: State) -> int:
        return state.mover

    def legal(self, state: State) -> tuple[str, ...]:
        return tuple(str(n) for n in range(1, min(MAX_TAKE, state.stones) + 1))

    def parse(self, text: str) -> str:
        key = "".join(text.split()).lower().removeprefix("take")
        if key in self.actions:
            return key
        raise InvalidAction(f"answer with how many stones you take: 1 to {MAX_TAKE}, e.g. 2")

    def check(self, state: State, action: str) -> None:
        if int(action) > state.stones:
            raise InvalidAction(f"only {state.stones} stone{'s' * (state.stones != 1)} left; take at most that many")
        super().check(state, action)

    def play(self, state: State, action: str) -> State:
        return State(state.stones - int(action), 1 - state.mover, state.mover)

    def payoff(self, state: State) -> float | None:
        if state.stones:
            return None
        return 1.0 if state.last == 0 else -1.0

    def moves_left(self, state: State) -> int:
        return 0  # every game lasts as long as it lasts; only the result counts

    def information(self, state: State, seat: int) -> int:
        return state.stones  # an observed state is always the viewer's turn (or the end)

    def view(self, state: State, seat: int) -> str:
        if state.stones == 0:
            return f"No stones left. Game over: you {'won' if self.seat_payoff(state, seat) > 0 else 'lost'}."
        return f"Stones left: {state.stones}. Take 1 to {min(MAX_TAKE, state.stones)}."

    def instructions(self, seat: int) -> str:
        return (
            "You play Nim against an opponent with one heap of stones. Players take turns removing 1, 2 or 3 "
            "stones; whoever takes the last stone wins. Answer with the number of stones you take: 1, 2 or 3."
        )

    def move_text(self, action: str, seat: int, you: bool) -> str:
        return f"You took {action}" if you else f"the opponent took {action}"

    def ending(self, state: State, seat: int) -> str:
        return " and the last stone: you win!" if self.seat_payoff(state, seat) > 0 else ": you lose."

    scripted = {
        Opponent.RANDOM.value: Scripted(uniform, "takes 1 to 3 stones at random"),
        Opponent.MINIMAX.value: Scripted(MinimaxGame.minimax, "plays perfectly (leaves a multiple of 4)"),
    }


GAME = Nim()


class NimEnv(TwoPlayerEnv[State]):
    """Play one-heap Nim against a scripted opponent (or any policy).

    ## Description
    A heap of 5 to 12 stones (uniform, seeded). Players take turns removing 1, 2 or 3 stones; whoever
    takes the last stone wins. The winning strategy is known: leave the opponent a multiple of 4. The
    opponent takes at random (``opponent="random"``) or plays perfectly (``"minimax"``, random when
    it is lost). The actions are single digits, which makes it the quickest game to learn (the
    self-play test uses it).

    ## Action Space
    ``1``, ``2`` or ``3`` (also ``take 2``; case and whitespace ignored), at most the stones left.

    ## Observation Space
    The last moves, then the stones left, or the result. ``info["state"]`` is the number of stones left;
    against a scripted opponent the game is an exact MDP over it (``tabular_mdp()``).

    ## Starting State
    A heap of 5 to 12 stones; the opponent may have moved first (``first_player``).

    ## Rewards
    Terms of :class:`~textgym.envs.two_player.WinDrawLossReward`: ``success`` (a win, 1.0), ``failure`` (0.0),
    ``step`` (0.0), ``invalid_action`` (-0.1); there are no draws.

    ## Episode End
    Terminated when the last stone is taken. Truncated by the registered step limit (30) and by
    ``max_invalid_streak`` if set.

    ## Information
    The base keys, ``state``, ``outcome``, ``payoff`` (+1 or -1 at the end) and, with a policy opponent,
    ``opponent_invalid``.

    ## Arguments
    ``gym.make("textgym/Nim-v0", opponent="minimax", first_player="random")``; the PettingZoo AEC env:
    ``textgym.envs.nim.aec_env()``.

    ## Version History
    * v0: initial version.
    """

    game = GAME

    def oracle_action(self) -> str:
        """Leave a multiple of 4 when possible, else take 1."""
        return GAME.best_moves(self.state)[0]


def aec_env(**kwargs: object) -> AECEnv:
    """Nim as a PettingZoo AEC env (``max_cycles``, ``invalid_action``, ``render_mode``); player_0 moves first."""
    return make_aec(GAME, **kwargs)
