"""Tic-tac-toe, played by naming cells: against a scripted O, or as a PettingZoo AEC env."""

from __future__ import annotations

import functools
from enum import Enum
from typing import TYPE_CHECKING

from textgym.envs.base import InvalidAction
from textgym.envs.two_player import MinimaxGame, Scripted, TwoPlayerEnv, make_aec, mixed, uniform

if TYPE_CHECKING:
    from pettingzoo import AECEnv

COLUMNS = "abc"
ROWS = "123"
CELLS = tuple(column + row for row in ROWS for column in COLUMNS)
"""Cell names in board order: a1 b1 c1 is the top row, a3 b3 c3 the bottom one."""
CELL_INDEX = {name: index for index, name in enumerate(CELLS)}
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
EMPTY, AGENT, OPPONENT = ".", "X", "O"
MARKS = (AGENT, OPPONENT)
"""The mark of each seat: seat 0 (the agent of the single-agent env, player_0 of the AEC env) plays X."""
RESULT_TEXT = {"win": "you won", "loss": "you lost", "draw": "it is a draw"}
RESULT_MESSAGE = {
    "win": " and completed a line: you win!",
    "loss": " and completed a line: you lose.",
    "draw": ". The board is full: it is a draw.",
}
"""How the step's message ends when the game does."""
FOR_O = {"win": "loss", "loss": "win", "draw": "draw"}

Board = str
"""A 9-character string over ``.XO``, in board order."""
State = tuple[Board, int]
"""A board and the seat to move."""


# ---- the game, as pure functions of a board --------------------------------------------------------
def place(board: Board, cell: int, mark: str) -> Board:
    """``board`` with ``mark`` written in ``cell``."""
    return board[:cell] + mark + board[cell + 1 :]


def wins(board: Board, mark: str) -> bool:
    """Whether ``mark`` holds a full row, column or diagonal."""
    return any(board[a] == board[b] == board[c] == mark for a, b, c in LINES)


def empty_cells(board: Board) -> list[int]:
    """The indices of the empty cells, in board order."""
    return [cell for cell, mark in enumerate(board) if mark == EMPTY]


@functools.cache
def result(board: Board) -> str | None:
    """``"win"`` (X holds a line), ``"loss"`` (O does), ``"draw"`` (full board) or ``None`` (game on)."""
    if wins(board, AGENT):
        return "win"
    if wins(board, OPPONENT):
        return "loss"
    return "draw" if EMPTY not in board else None


def seat_result(board: Board, seat: int) -> str | None:
    """:func:`result` as ``seat`` sees it."""
    outcome = result(board)
    return FOR_O[outcome] if outcome and seat == 1 else outcome


def board_text(board: Board, seat: int = 0) -> str:
    """The text view of a board for ``seat``: the grid with column and row labels, then the turn or the result."""
    rows = "\n".join(f"{row}  {' '.join(board[3 * r : 3 * r + 3])}" for r, row in enumerate(ROWS))
    outcome = seat_result(board, seat)
    status = f"Game over: {RESULT_TEXT[outcome]}." if outcome else f"You are {MARKS[seat]}. Your move."
    return f"   {' '.join(COLUMNS)}\n{rows}\n{status}"


def parse_cell(text: str) -> int:
    """The board index of a cell name such as ``b2`` (case and whitespace ignored)."""
    key = "".join(text.split()).lower()
    if key in CELL_INDEX:
        return CELL_INDEX[key]
    if key[::-1] in CELL_INDEX:
        raise InvalidAction(f"write the column letter first, as in {key[::-1]}")
    raise InvalidAction("name a cell by its column letter a-c then its row number 1-3, e.g. b2 (the centre)")


class Opponent(Enum):
    """Who plays O."""

    RANDOM = "random"
    MINIMAX = "minimax"


class TicTacToe(MinimaxGame[State]):
    """The rules of tic-tac-toe: seat 0 plays X, seat 1 plays O; either may move first."""

    name = "tic_tac_toe"
    actions = CELLS
    scripted = {
        Opponent.RANDOM.value: Scripted(uniform, "picks a random empty cell"),
        Opponent.MINIMAX.value: Scripted(MinimaxGame.minimax, "plays perfectly"),
    }

    def starts(self, first: int) -> tuple[tuple[float, State], ...]:
        return ((1.0, (EMPTY * 9, first)),)

    def to_move(self, state: State) -> int:
        return state[1]

    def legal(self, state: State) -> tuple[str, ...]:
        board = state[0]
        return () if result(board) else tuple(CELLS[cell] for cell in empty_cells(board))

    def parse(self, text: str) -> str:
        return CELLS[parse_cell(text)]

    def check(self, state: State, action: str) -> None:
        mark = state[0][CELL_INDEX[action]]
        if mark != EMPTY:
            raise InvalidAction(f"{action} is taken by {mark}; mark an empty cell")
        super().check(state, action)

    def play(self, state: State, action: str) -> State:
        board, mover = state
        return place(board, CELL_INDEX[action], MARKS[mover]), 1 - mover

    def payoff(self, state: State) -> float | None:
        outcome = result(state[0])
        return None if outcome is None else {"win": 1.0, "loss": -1.0, "draw": 0.0}[outcome]

    def moves_left(self, state: State) -> int:
        return state[0].count(EMPTY)

    def information(self, state: State, seat: int) -> Board:
        return state[0]  # whose turn it is shows in the view; an observed board is always the viewer's turn

    def view(self, state: State, seat: int) -> str:
        return board_text(state[0], seat)

    def instructions(self, seat: int) -> str:
        mark, other = MARKS[seat], MARKS[1 - seat]
        return (
            f"You play tic-tac-toe as {mark} against an opponent playing {other} on a 3x3 board. Columns are a, b, "
            "c from left to right and rows 1, 2, 3 from top to bottom; '.' marks an empty cell. Players take turns "
            "marking one empty cell; the first to hold a full row, column or diagonal wins, and a full board "
            "without a line is a draw. Answer with the empty cell you mark: its column letter then its row "
            "number, e.g. b2 for the centre."
        )

    def move_text(self, action: str, seat: int, you: bool) -> str:
        return f"You marked {action}" if you else f"{MARKS[seat]} replied {action}"

    def ending(self, state: State, seat: int) -> str:
        return RESULT_MESSAGE[seat_result(state[0], seat)]


GAME = TicTacToe()


def negamax(board: Board, mark: str) -> float:
    """The value of ``board`` for ``mark`` to move (no winner yet, a cell empty).

    A win is worth 1 + the number of cells still empty after it (so sooner wins are worth more and
    later losses cost less), a loss the negative of the opponent's win, a draw 0.
    """
    return GAME.negamax((board, MARKS.index(mark)))


def best_cells(board: Board, mark: str) -> tuple[int, ...]:
    """The minimax-optimal cells for ``mark`` to play, in board order."""
    return tuple(CELL_INDEX[cell] for cell in GAME.best_moves((board, MARKS.index(mark))))


def opponent_distribution(board: Board, opponent: Opponent, epsilon: float) -> tuple[tuple[float, int], ...]:
    """O's move on ``board`` (O to move) as ``(probability, cell)`` pairs in board order.

    With probability ``epsilon`` a uniformly random empty cell, otherwise uniform over the cells the
    opponent chooses from (all empty cells, or the minimax-optimal ones); cells it never plays are left out.
    """
    state = (board, 1)
    legal = GAME.legal(state)
    chosen = [a for _, a in GAME.scripted[opponent.value].policy(GAME, state, 1)]
    return tuple((p, CELL_INDEX[cell]) for p, cell in mixed(chosen, legal, epsilon))


class TicTacToeEnv(TwoPlayerEnv[State]):
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
    Terms of :class:`~textgym.envs.two_player.WinDrawLossReward`: ``success`` (a win, 1.0), ``failure``
    (a loss, 0.0), ``draw`` (0.5), ``step`` (every step, 0.0), ``invalid_action`` (-0.1).

    ## Episode End
    Terminated when a player completes a line or the board is full (success only for a win).
    Truncated by the registered step limit (50 steps) and by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``: the empty cells in board order, ``reward_terms``,
    ``success``, ``invalid_actions``), ``state`` (the board string) and ``outcome``: ``None`` while
    the game runs, then ``"win"``, ``"loss"`` or ``"draw"``; at the end ``payoff`` (+1, 0 or -1); with a
    policy opponent ``opponent_invalid`` (its answers that were not legal moves, replaced by random ones).

    ## Arguments
    ``gym.make("textgym/TicTacToe-v0", opponent="minimax", first_player="random",
    opponent_epsilon=0.2, reward={"draw": 0.0})``; ``first_player`` is ``"agent"`` (default),
    ``"opponent"`` or ``"random"`` (a seeded coin at each reset). ``opponent`` may also be any object with a
    Policy's ``act`` (then there is no ``tabular_mdp()``), e.g. a trained policy or a self-play pool. The
    same game as a PettingZoo AEC env: ``textgym.envs.tic_tac_toe.aec_env()`` (X is ``player_0``).

    ## Version History
    * v0: initial version; rebuilt on :mod:`textgym.envs.two_player` with the same transcripts.
    """
    game = GAME

    @property
    def board(self) -> Board:
        """The board as a 9-character string over ``.XO`` in board order."""
        return self.state[0]

    def oracle_action(self) -> str:
        """A minimax-optimal cell for X (never loses), the first in board order among equals."""
        return GAME.best_moves(self.state)[0]



def aec_env(**kwargs: object) -> AECEnv:
    """Tic-tac-toe as a PettingZoo AEC env (``max_cycles``, ``invalid_action``, ``render_mode``); X moves first."""
    return make_aec(GAME, **kwargs)
