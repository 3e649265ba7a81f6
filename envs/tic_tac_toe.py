"""Tic-tac-toe against a scripted opponent, played by naming cells."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple, TypeVar

import numpy as np

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv

COLUMNS = "abc"
ROWS = "123"
CELLS = tuple(column + row for row in ROWS for column in COLUMNS)
"""Cell names in board order: a1 b1 c1 is the top row, a3 b3 c3 the bottom one."""
CELL_INDEX = {name: index for index, name in enumerate(CELLS)}
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
EMPTY, AGENT, OPPONENT = ".", "X", "O"
OTHER = {AGENT: OPPONENT, OPPONENT: AGENT}
RESULT_TERMS = {"win": "success", "loss": "failure", "draw": "draw"}
"""The reward term paid for each game result (the value of ``info["outcome"]`` at the end)."""
RESULT_TEXT = {"win": "you won", "loss": "you lost", "draw": "it is a draw"}

E = TypeVar("E", bound=Enum)


# ---- the game, as pure functions of a board (a 9-character string over ".XO", in board order) ----
def place(board: str, cell: int, mark: str) -> str:
    """``board`` with ``mark`` written in ``cell``."""
    return board[:cell] + mark + board[cell + 1 :]


def wins(board: str, mark: str) -> bool:
    """Whether ``mark`` holds a full row, column or diagonal."""
    return any(board[a] == board[b] == board[c] == mark for a, b, c in LINES)


def empty_cells(board: str) -> list[int]:
    """The indices of the empty cells, in board order."""
    return [cell for cell, mark in enumerate(board) if mark == EMPTY]


def move_value(board: str, cell: int, mark: str) -> int:
    """The value for ``mark`` of playing ``cell``, then perfect play by both sides.

    A win is worth 1 + the number of cells still empty after it (so sooner wins are worth more and
    later losses cost less), a loss the negative of the opponent's win, a draw 0.
    """
    after = place(board, cell, mark)
    if wins(after, mark):
        return after.count(EMPTY) + 1
    if EMPTY not in after:
        return 0
    return -negamax(after, OTHER[mark])


@functools.cache
def negamax(board: str, mark: str) -> int:
    """The value of ``board`` for ``mark`` to move (no winner yet, a cell empty); see :func:`move_value`."""
    return max(move_value(board, cell, mark) for cell in empty_cells(board))


@functools.cache
def best_cells(board: str, mark: str) -> tuple[int, ...]:
    """The minimax-optimal cells for ``mark`` to play, in board order."""
    values = {cell: move_value(board, cell, mark) for cell in empty_cells(board)}
    best = max(values.values())
    return tuple(cell for cell, value in values.items() if value == best)


def random_move(board: str, rng: np.random.Generator) -> int:
    """A uniformly random empty cell."""
    cells = empty_cells(board)
    return cells[int(rng.integers(len(cells)))]


def minimax_move(board: str, rng: np.random.Generator) -> int:
    """A uniformly random choice among the opponent's minimax-optimal cells."""
    cells = best_cells(board, OPPONENT)
    return cells[int(rng.integers(len(cells)))]


def parse_cell(text: str) -> int:
    """The board index of a cell name such as ``b2`` (case and whitespace ignored)."""
    key = "".join(text.split()).lower()
    if key in CELL_INDEX:
        return CELL_INDEX[key]
    if key[::-1] in CELL_INDEX:
        raise InvalidAction(f"write the column letter first, as in {key[::-1]}")
    raise InvalidAction("name a cell by its column letter a-c then its row number 1-3, e.g. b2 (the centre)")


# ---- choices ----------------------------------------------------------------------------------------
class Opponent(Enum):
    """Who plays O."""

    RANDOM = "random"
    MINIMAX = "minimax"


class OpponentPolicy(NamedTuple):
    move: Callable[[str, np.random.Generator], int]
    """The opponent's cell on a board where it is to move."""
    description: str
    """How the opponent plays, for the instructions."""


OPPONENTS = {
    Opponent.RANDOM: OpponentPolicy(random_move, "picks a random empty cell"),
    Opponent.MINIMAX: OpponentPolicy(minimax_move, "plays perfectly"),
}


class FirstPlayer(Enum):
    """Who makes the first move of a game."""

    AGENT = "agent"
    OPPONENT = "opponent"
    RANDOM = "random"
    """A fair coin from the env's seeded generator, drawn at every reset."""


def as_choice(kind: type[E], value: E | str, name: str) -> E:
    """``value`` as a member of the enum ``kind``; a ``ValueError`` naming the choices otherwise."""
    try:
        return kind(value)
    except ValueError:
        choices = [member.value for member in kind]
        raise ValueError(f"{name}={value!r} is not supported; use one of {choices}") from None


@dataclass
class TicTacToeReward(RewardSpec):
    """Tic-tac-toe's reward weights: by default a game scores 1 for a win, 0.5 for a draw, 0 for a loss."""

    draw: float = 0.5
    """Paid once when the board fills up with no line of three (a draw is not a success)."""


class TicTacToeEnv(TextEnv[int]):
    """Play tic-tac-toe as X against a scripted O.

    ## Description
    The 3x3 game: players take turns marking an empty cell, and the first to hold a full row,
    column or diagonal wins; a full board with no line is a draw. The agent always plays X; the
    opponent plays O and either picks random empty cells (``opponent="random"``) or plays
    perfectly (``opponent="minimax"``, choosing at random among its optimal moves). With
    ``opponent_epsilon`` > 0 the opponent plays a random cell instead of its own choice with that
    probability. Against a perfect opponent the best reachable result is a draw.

    ## Action Space
    A cell name: column letter ``a``-``c`` (left to right) followed by row number ``1``-``3`` (top
    to bottom), e.g. ``b2`` for the centre. Case and whitespace are ignored (``" B2 "`` and
    ``"b 2"`` are ``b2``). Unknown names and occupied cells are invalid actions (the board is
    unchanged and the opponent does not move).

    ## Observation Space
    The last move's result (the agent's cell and the opponent's reply), then the board as a grid of
    ``X``, ``O`` and ``.`` with column and row labels, then whose turn it is or the game's result.

    ## Starting State
    An empty board, or one O already placed when the opponent moves first (``first_player``).

    ## Rewards
    Terms of :class:`TicTacToeReward`: ``success`` (a win, 1.0), ``failure`` (a loss, 0.0), ``draw``
    (0.5), ``step`` (every step, 0.0), ``invalid_action`` (-0.1).

    ## Episode End
    Terminated when a player completes a line or the board is full (success only for a win).
    Truncated by the registered step limit (50 steps) and by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``: the empty cells in board order, ``reward_terms``,
    ``success``, ``invalid_actions``) and ``outcome``: ``None`` while the game runs, then
    ``"win"``, ``"loss"`` or ``"draw"``.

    ## Arguments
    ``gym.make("textgym/TicTacToe-v0", opponent="minimax", first_player="random",
    opponent_epsilon=0.2, reward={"draw": 0.0})``; ``first_player`` is ``"agent"`` (default),
    ``"opponent"`` or ``"random"`` (a seeded coin at each reset).

    ## Version History
    * v0: initial version.
    """

    reward_spec = TicTacToeReward
    max_observation_length = 512

    def __init__(
        self,
        opponent: Opponent | str = Opponent.RANDOM,
        first_player: FirstPlayer | str = FirstPlayer.AGENT,
        opponent_epsilon: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.opponent = as_choice(Opponent, opponent, "opponent")
        self.first_player = as_choice(FirstPlayer, first_player, "first_player")
        if not 0.0 <= opponent_epsilon <= 1.0:
            raise ValueError(f"opponent_epsilon={opponent_epsilon!r} is a probability: give one in [0, 1]")
        self.opponent_epsilon = float(opponent_epsilon)
        self._opponent_move = OPPONENTS[self.opponent].move
        mistakes = (
            f", except that it plays a random empty cell with probability {self.opponent_epsilon:g}"
            if self.opponent_epsilon
            else ""
        )
        first = {
            FirstPlayer.AGENT: "You move first.",
            FirstPlayer.OPPONENT: "The opponent moves first.",
            FirstPlayer.RANDOM: "A coin flip decides who moves first.",
        }[self.first_player]
        self.instructions = (
            "You play tic-tac-toe as X against an opponent playing O on a 3x3 board. Columns are a, b, c "
            "from left to right and rows 1, 2, 3 from top to bottom; '.' marks an empty cell. Players take "
            "turns marking one empty cell; the first to hold a full row, column or diagonal wins, and a full "
            f"board without a line is a draw. The opponent {OPPONENTS[self.opponent].description}{mistakes}. "
            f"{first} Answer with the empty cell you mark: its column letter then its row number, e.g. b2 "
            "for the centre."
        )
        self.board = EMPTY * 9
        self.outcome: str | None = None

    def _reset(self, options: dict[str, Any] | None) -> None:
        self.board = EMPTY * 9
        self.outcome = None
        if self.first_player is FirstPlayer.RANDOM:
            opponent_first = bool(self.np_random.integers(2))
        else:
            opponent_first = self.first_player is FirstPlayer.OPPONENT
        if opponent_first:
            self._opponent_turn()

    def parse_action(self, text: str) -> int:
        return parse_cell(text)

    def _step(self, action: int) -> Outcome:
        if self.board[action] != EMPTY:
            raise InvalidAction(f"{CELLS[action]} is taken by {self.board[action]}; mark an empty cell")
        self.board = place(self.board, action, AGENT)
        message = f"You marked {CELLS[action]}"
        if wins(self.board, AGENT):
            return self._end("win", f"{message} and completed a line: you win!")
        if EMPTY not in self.board:
            return self._end("draw", f"{message}. The board is full: it is a draw.")
        message = f"{message}; O replied {CELLS[self._opponent_turn()]}"
        if wins(self.board, OPPONENT):
            return self._end("loss", f"{message} and completed a line: you lose.")
        if EMPTY not in self.board:
            return self._end("draw", f"{message}. The board is full: it is a draw.")
        # no move limit here: the game ends within 5 moves; truncation comes from max_episode_steps
        return Outcome(f"{message}.")

    def _opponent_turn(self) -> int:
        if self.opponent_epsilon and self.np_random.random() < self.opponent_epsilon:
            cell = random_move(self.board, self.np_random)
        else:
            cell = self._opponent_move(self.board, self.np_random)
        self.board = place(self.board, cell, OPPONENT)
        return cell

    def _end(self, result: str, message: str) -> Outcome:
        self.outcome = result
        return Outcome(message, {RESULT_TERMS[result]: 1}, terminated=True, success=result == "win")

    def describe(self) -> str:
        rows = "\n".join(f"{row}  {' '.join(self.board[3 * r : 3 * r + 3])}" for r, row in enumerate(ROWS))
        status = f"Game over: {RESULT_TEXT[self.outcome]}." if self.outcome else "You are X. Your move."
        return f"   {' '.join(COLUMNS)}\n{rows}\n{status}"

    def valid_actions(self) -> list[str]:
        return [CELLS[cell] for cell in empty_cells(self.board)]

    def _info(self) -> dict[str, Any]:
        return {"outcome": self.outcome}

    def oracle_action(self) -> str:
        """A minimax-optimal cell for X (never loses), the first in board order among equals."""
        return CELLS[best_cells(self.board, AGENT)[0]]
