"""Tic-tac-toe against a scripted opponent, played by naming cells."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple, TypeVar

import numpy as np

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv
from textgym.envs.mdp import Branch, TabularMDP, enumerate_mdp

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
RESULT_MESSAGE = {
    "win": " and completed a line: you win!",
    "loss": " and completed a line: you lose.",
    "draw": ". The board is full: it is a draw.",
}
"""How the step's message ends when the game does."""

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


@functools.cache
def result(board: str) -> str | None:
    """``"win"`` (X holds a line), ``"loss"`` (O does), ``"draw"`` (full board) or ``None`` (game on)."""
    if wins(board, AGENT):
        return "win"
    if wins(board, OPPONENT):
        return "loss"
    return "draw" if EMPTY not in board else None


def branch_to(prob: float, board: str) -> Branch:
    """A move that leads to ``board``: its result's reward term, whether the game ended, whether X won."""
    outcome = result(board)
    terms = {RESULT_TERMS[outcome]: 1} if outcome else {}
    return Branch(prob, board, terms, outcome is not None, outcome == "win")


def board_text(board: str) -> str:
    """The text view of a board: the grid with column and row labels, then the turn or the result."""
    rows = "\n".join(f"{row}  {' '.join(board[3 * r : 3 * r + 3])}" for r, row in enumerate(ROWS))
    status = f"Game over: {RESULT_TEXT[outcome]}." if (outcome := result(board)) else "You are X. Your move."
    return f"   {' '.join(COLUMNS)}\n{rows}\n{status}"


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


def minimax_cells(board: str) -> tuple[int, ...]:
    """The opponent's minimax-optimal cells."""
    return best_cells(board, OPPONENT)


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
    cells: Callable[[str], Sequence[int]]
    """The cells the opponent chooses from, uniformly, on a board where it is to move."""
    description: str
    """How the opponent plays, for the instructions."""


OPPONENTS = {
    Opponent.RANDOM: OpponentPolicy(empty_cells, "picks a random empty cell"),
    Opponent.MINIMAX: OpponentPolicy(minimax_cells, "plays perfectly"),
}


@functools.cache
def opponent_distribution(board: str, opponent: Opponent, epsilon: float) -> tuple[tuple[float, int], ...]:
    """The opponent's move on ``board`` (O to move) as ``(probability, cell)`` pairs in board order.

    With probability ``epsilon`` a uniformly random empty cell, otherwise uniform over the cells the
    opponent chooses from; cells it never plays are left out. The env samples its replies from this
    and :meth:`TicTacToeEnv.tabular_mdp` enumerates it, so the two agree.
    """
    chosen, empty = OPPONENTS[opponent].cells(board), empty_cells(board)
    probs = (epsilon / len(empty) + (1.0 - epsilon) * (cell in chosen) / len(chosen) for cell in empty)
    return tuple((prob, cell) for prob, cell in zip(probs, empty) if prob > 0)


def sample_cell(distribution: Sequence[tuple[float, int]], rng: np.random.Generator) -> int:
    """A cell drawn from ``(probability, cell)`` pairs with one uniform number from ``rng``."""
    u = rng.random()
    for prob, cell in distribution:
        u -= prob
        if u < 0:
            return cell
    return distribution[-1][1]  # u within rounding error of 1


class FirstPlayer(Enum):
    """Who makes the first move of a game."""

    AGENT = "agent"
    OPPONENT = "opponent"
    RANDOM = "random"
    """A fair coin from the env's seeded generator, drawn at every reset."""


OPPONENT_FIRST = {FirstPlayer.AGENT: 0.0, FirstPlayer.OPPONENT: 1.0, FirstPlayer.RANDOM: 0.5}
"""The probability that the opponent makes the first move."""


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
    ``info["state"]`` is the board as a 9-character string over ``.XO`` in board order (a1 b1 c1 a2
    ... c3); the game is a finite MDP over these boards, exported by ``env.unwrapped.tabular_mdp()``.

    ## Starting State
    An empty board, or one O already placed when the opponent moves first (``first_player``; with
    ``"random"`` a fair coin decides).

    ## Rewards
    Terms of :class:`TicTacToeReward`: ``success`` (a win, 1.0), ``failure`` (a loss, 0.0), ``draw``
    (0.5), ``step`` (every step, 0.0), ``invalid_action`` (-0.1).

    ## Episode End
    Terminated when a player completes a line or the board is full (success only for a win).
    Truncated by the registered step limit (50 steps) and by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``: the empty cells in board order, ``reward_terms``,
    ``success``, ``invalid_actions``), ``state`` (the board string) and ``outcome``: ``None`` while
    the game runs, then ``"win"``, ``"loss"`` or ``"draw"``.

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

    def _reset(self, options: dict[str, Any] | None) -> None:
        self.board = EMPTY * 9
        if self.first_player is FirstPlayer.RANDOM:
            opponent_first = bool(self.np_random.integers(2))
        else:
            opponent_first = self.first_player is FirstPlayer.OPPONENT
        if opponent_first:
            self.board = place(self.board, sample_cell(self._replies(self.board), self.np_random), OPPONENT)

    def parse_action(self, text: str) -> int:
        return parse_cell(text)

    def _replies(self, board: str) -> tuple[tuple[float, int], ...]:
        """The opponent's move on ``board``, as :func:`opponent_distribution` gives it for this env."""
        return opponent_distribution(board, self.opponent, self.opponent_epsilon)

    def _step(self, action: int) -> Outcome:
        if self.board[action] != EMPTY:
            raise InvalidAction(f"{CELLS[action]} is taken by {self.board[action]}; mark an empty cell")
        self.board = place(self.board, action, AGENT)
        message = f"You marked {CELLS[action]}"
        if result(self.board) is None:
            reply = sample_cell(self._replies(self.board), self.np_random)
            self.board = place(self.board, reply, OPPONENT)
            message = f"{message}; O replied {CELLS[reply]}"
        # no move limit here: the game ends within 5 moves; truncation comes from max_episode_steps
        b = branch_to(1.0, self.board)
        ending = RESULT_MESSAGE[self.outcome] if b.terminated else "."
        return Outcome(message + ending, dict(b.terms), b.terminated, b.success)

    def branches(self, board: str, cell: int) -> list[Branch]:
        """The MDP: the boards that marking ``cell`` leads to, with X to move again or the game over.

        Built from the same :func:`result`, :func:`opponent_distribution` and :func:`branch_to` as ``_step``.
        """
        after = place(board, cell, AGENT)
        if result(after):
            return [branch_to(1.0, after)]
        return [branch_to(prob, place(after, reply, OPPONENT)) for prob, reply in self._replies(after)]

    @property
    def outcome(self) -> str | None:
        """The game's result (``"win"``, ``"loss"``, ``"draw"``), ``None`` while it runs."""
        return result(self.board)

    def describe(self) -> str:
        return board_text(self.board)

    def valid_actions(self) -> list[str]:
        return [CELLS[cell] for cell in empty_cells(self.board)]

    def _info(self) -> dict[str, Any]:
        return {"state": self.board, "outcome": self.outcome}

    def oracle_action(self) -> str:
        """A minimax-optimal cell for X (never loses), the first in board order among equals."""
        return CELLS[best_cells(self.board, AGENT)[0]]

    def tabular_mdp(self) -> TabularMDP:
        """The game against this env's opponent as an exact MDP over boards (``info["state"]``).

        States are the boards with X to move plus the final boards; the start distribution covers
        the opponent's opening when it moves first (half of it under ``first_player="random"``).
        """
        empty = EMPTY * 9
        opponent_first = OPPONENT_FIRST[self.first_player]
        start = {empty: 1.0 - opponent_first} if opponent_first < 1.0 else {}
        if opponent_first > 0.0:
            start |= {place(empty, cell, OPPONENT): opponent_first * p for p, cell in self._replies(empty)}
        return enumerate_mdp(
            start,
            lambda board: [CELLS[cell] for cell in empty_cells(board)],
            lambda board, action: self.branches(board, CELL_INDEX[action]),
            board_text,
            self.reward,
        )
