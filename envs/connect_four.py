"""Connect Four on a 4x4 board, played by naming columns: against a scripted O, or as a PettingZoo AEC env."""

from __future__ import annotations

import functools
from enum import Enum
from typing import TYPE_CHECKING

from textgym.envs.base import InvalidAction
from textgym.envs.two_player import MinimaxGame, Scripted, TwoPlayerEnv, make_aec, uniform

if TYPE_CHECKING:
    from pettingzoo import AECEnv

COLUMNS = "abcd"
HEIGHT = 4
EMPTY, MARKS = ".", ("X", "O")
"""Seat 0 (the agent of the single-agent env, player_0 of the AEC env) drops X, seat 1 drops O."""


def _lines() -> tuple[tuple[int, ...], ...]:
    found = []
    for c in range(len(COLUMNS)):
        for r in range(HEIGHT):
            for dc, dr in ((1, 0), (0, 1), (1, 1), (1, -1)):
                cells = [(c + i * dc, r + i * dr) for i in range(4)]
                if all(0 <= x < len(COLUMNS) and 0 <= y < HEIGHT for x, y in cells):
                    found.append(tuple(x * HEIGHT + y for x, y in cells))
    return tuple(found)


LINES = _lines()
"""The ten lines of four: four columns, four rows, two diagonals (cell ``column * HEIGHT + row``)."""
RESULT_TEXT = {1: "you won", -1: "you lost", 0: "it is a draw"}
RESULT_MESSAGE = {1: " and connected four: you win!", -1: " and connected four: you lose.",
                  0: ". The board is full: it is a draw."}

Board = str
"""16 characters over ``.XO``, column by column from column a, each from the bottom row up."""
State = tuple[Board, int]
"""A board and the seat to move."""


@functools.cache
def winner(board: Board) -> str | None:
    """The mark holding a line of four, if any."""
    full = (board[a] for a, b, c, d in LINES if board[a] != EMPTY and board[a] == board[b] == board[c] == board[d])
    return next(full, None)


def drop(board: Board, column: int, mark: str) -> Board:
    """``board`` with ``mark`` dropped into ``column`` (which has room)."""
    row = board[column * HEIGHT : (column + 1) * HEIGHT].index(EMPTY)
    cell = column * HEIGHT + row
    return board[:cell] + mark + board[cell + 1 :]


def board_text(board: Board, seat: int, outcome: float | None) -> str:
    """The grid (row 4 on top) with column and row labels, then the turn or the result for ``seat``."""
    rows = [f"{r + 1}  {' '.join(board[c * HEIGHT + r] for c in range(len(COLUMNS)))}" for r in reversed(range(HEIGHT))]
    status = f"Game over: {RESULT_TEXT[int(outcome)]}." if outcome is not None else f"You are {MARKS[seat]}. Your move."
    return "\n".join([f"   {' '.join(COLUMNS)}", *rows, status])


class Opponent(Enum):
    """Who plays O."""

    RANDOM = "random"
    MINIMAX = "minimax"


class ConnectFour(MinimaxGame[State]):
    """The rules of Connect Four on 4 columns of height 4; seat 0 drops X; either seat may move first."""

    name = "connect_four"
    actions = tuple(COLUMNS)
    scripted = {
        Opponent.RANDOM.value: Scripted(uniform, "drops into a random column with room"),
        Opponent.MINIMAX.value: Scripted(MinimaxGame.minimax, "plays perfectly"),
    }

    def starts(self, first: int) -> tuple[tuple[float, State], ...]:
        return ((1.0, (EMPTY * len(COLUMNS) * HEIGHT, first)),)

    def to_move(self, state: State) -> int:
        return state[1]

    def legal(self, state: State) -> tuple[str, ...]:
        board = state[0]
        if winner(board):
            return ()
        return tuple(name for c, name in enumerate(COLUMNS) if board[c * HEIGHT + HEIGHT - 1] == EMPTY)

    def parse(self, text: str) -> str:
        key = "".join(text.split()).lower()
        if key in COLUMNS and key:
            return key
        raise InvalidAction(f"name a column by its letter, {', '.join(COLUMNS)} from left to right")

    def check(self, state: State, action: str) -> None:
        column = COLUMNS.index(action)
        if state[0][column * HEIGHT + HEIGHT - 1] != EMPTY:
            raise InvalidAction(f"column {action} is full; drop into a column with room")
        super().check(state, action)

    def play(self, state: State, action: str) -> State:
        board, mover = state
        return drop(board, COLUMNS.index(action), MARKS[mover]), 1 - mover

    def payoff(self, state: State) -> float | None:
        mark = winner(state[0])
        if mark is not None:
            return 1.0 if mark == MARKS[0] else -1.0
        return None if EMPTY in state[0] else 0.0

    def moves_left(self, state: State) -> int:
        return state[0].count(EMPTY)

    def information(self, state: State, seat: int) -> Board:
        return state[0]  # an observed board is always the viewer's turn

    def view(self, state: State, seat: int) -> str:
        outcome = self.payoff(state)
        return board_text(state[0], seat, None if outcome is None else outcome if seat == 0 else -outcome)

    def instructions(self, seat: int) -> str:
        return (
            f"You play Connect Four as {MARKS[seat]} against an opponent playing {MARKS[1 - seat]} on a board of 4 "
            "columns (a, b, c, d from left to right) and 4 rows (1 at the bottom, 4 at the top); '.' marks an "
            "empty cell. Players take turns dropping a disc into a column that has room: it falls to the lowest "
            "empty cell. The first to hold four in a row, a column or a diagonal wins; a full board without one "
            "is a draw. Answer with the letter of the column you drop into, e.g. b."
        )

    def move_text(self, action: str, seat: int, you: bool) -> str:
        return f"You dropped into {action}" if you else f"{MARKS[seat]} replied {action}"

    def ending(self, state: State, seat: int) -> str:
        return RESULT_MESSAGE[int(self.seat_payoff(state, seat))]


GAME = ConnectFour()


class ConnectFourEnv(TwoPlayerEnv[State]):
    """Play Connect Four on a 4x4 board as X against a scripted O (or any policy).

    ## Description
    Four columns of height four. Players take turns dropping a disc into a column with room; it falls
    to the lowest empty cell. The first to hold four in a row, column or diagonal wins; a full board
    without one is a draw. The agent plays X; the opponent plays O and either drops into random columns
    (``opponent="random"``) or plays perfectly (``opponent="minimax"``, uniform among its optimal moves;
    exact negamax over the game's 161,029 positions). With perfect play by both the game is a draw
    (``test_connect_four.py`` solves it). ``opponent`` may also be any object with a Policy's ``act``.

    ## Action Space
    A column letter ``a``-``d`` (case and whitespace ignored). Other text and full columns are invalid
    actions (nothing moves).

    ## Observation Space
    The last move's result (the agent's column and the opponent's reply), then the grid of ``X``, ``O``
    and ``.`` (row 4 on top) with labels, then whose turn it is or the result. ``info["state"]`` is the
    board (16 characters, column by column from the bottom); against a scripted opponent the game is a
    finite MDP over these boards, ``env.unwrapped.tabular_mdp()``.

    ## Starting State
    An empty board, or one O already dropped when the opponent moves first (``first_player``).

    ## Rewards
    Terms of :class:`~textgym.envs.two_player.WinDrawLossReward`: ``success`` (a win, 1.0), ``failure`` (a
    loss, 0.0), ``draw`` (0.5), ``step`` (0.0), ``invalid_action`` (-0.1).

    ## Episode End
    Terminated when a player connects four or the board is full (success only for a win). Truncated by
    the registered step limit (50) and by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``: the columns with room), ``state`` (the board), ``outcome``
    (``None``, then ``"win"``, ``"loss"`` or ``"draw"``), ``payoff`` at the end (+1, 0, -1), and with a policy
    opponent ``opponent_invalid``.

    ## Arguments
    ``gym.make("textgym/ConnectFour-v0", opponent="minimax", first_player="random", opponent_epsilon=0.2)``;
    the PettingZoo AEC env: ``textgym.envs.connect_four.aec_env()``.

    ## Version History
    * v0: initial version.
    """

    game = GAME

    def oracle_action(self) -> str:
        """A minimax-optimal column (never loses), the first from the left among equals."""
        return GAME.best_moves(self.state)[0]


def aec_env(**kwargs: object) -> AECEnv:
    """Connect Four as a PettingZoo AEC env (``max_cycles``, ``invalid_action``, ``render_mode``); X moves first."""
    return make_aec(GAME, **kwargs)
