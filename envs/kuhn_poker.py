"""Kuhn poker, the smallest poker with bluffing: against a scripted opponent, or as a PettingZoo AEC env."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from textgym.envs.base import RewardSpec, match_choice
from textgym.envs.mdp import solve
from textgym.envs.two_player import Distribution, Game, Scripted, TwoPlayerEnv, make_aec, uniform

if TYPE_CHECKING:
    from pettingzoo import AECEnv

CARDS = "JQK"
"""Jack < Queen < King; one card each, the third is not used."""
ACTIONS = ("check", "bet", "call", "fold")
ALPHA = 1 / 6
"""The scripted first player's bluffing frequency with a Jack: every alpha in [0, 1/3] is an equilibrium."""
GAME_VALUE = -1 / 18
"""The first player's expected winnings per hand under equilibrium play (Kuhn 1950)."""
PAST = {"check": "checked", "bet": "bet", "call": "called", "fold": "folded"}


class State(NamedTuple):
    """A hand: the cards of seat 0 and seat 1, the seat that acts first, and the moves so far."""

    cards: tuple[str, str]
    first: int
    history: tuple[str, ...] = ()


class Information(NamedTuple):
    """What a seat knows: its card, whether it acts first, the moves, and the other card once shown."""

    card: str
    first: bool
    history: tuple[str, ...]
    shown: str | None


ENDS = {("check", "check"): None, ("bet", "call"): None, ("check", "bet", "call"): None,
        ("bet", "fold"): 0, ("check", "bet", "fold"): 1}
"""Finished betting sequences: ``None`` for a showdown, else who wins the pot (0: the first to act)."""


def stake(history: tuple[str, ...]) -> int:
    """What the loser of a finished hand pays: the ante, plus the bet if it was called."""
    return 2 if history[-1] == "call" else 1


class Opponent(Enum):
    """Who plays the other seat."""

    RANDOM = "random"
    EQUILIBRIUM = "equilibrium"


class KuhnPoker(Game[State]):
    """Kuhn's three-card poker: each antes 1 and gets one card; one betting round with a single bet of 1."""

    name = "kuhn_poker"
    actions = ACTIONS
    optimal = "equilibrium"

    def starts(self, first: int) -> tuple[tuple[float, State], ...]:
        deals = list(itertools.permutations(CARDS, 2))
        return tuple((1 / len(deals), State(deal, first)) for deal in deals)

    def to_move(self, state: State) -> int:
        return (state.first + len(state.history)) % 2

    def legal(self, state: State) -> tuple[str, ...]:
        if state.history in ENDS:
            return ()
        return ("call", "fold") if state.history and state.history[-1] == "bet" else ("check", "bet")

    def parse(self, text: str) -> str:
        return match_choice(text, {action: action for action in ACTIONS})

    def play(self, state: State, action: str) -> State:
        return state._replace(history=(*state.history, action))

    def payoff(self, state: State) -> float | None:
        if state.history not in ENDS:
            return None
        winner = ENDS[state.history]
        if winner is None:
            seat = 0 if CARDS.index(state.cards[0]) > CARDS.index(state.cards[1]) else 1
        else:
            seat = (state.first + winner) % 2
        return float(stake(state.history) if seat == 0 else -stake(state.history))

    def information(self, state: State, seat: int) -> Information:
        showdown = state.history in ENDS and ENDS[state.history] is None
        return Information(state.cards[seat], state.first == seat, state.history,
                           state.cards[1 - seat] if showdown else None)

    def terms(self, state: State, seat: int) -> dict[str, float]:
        chips = self.seat_payoff(state, seat)
        return {"chips": chips, "success" if chips > 0 else "failure": 1}

    def view(self, state: State, seat: int) -> str:
        known = self.information(state, seat)
        order = "You act first." if known.first else "The opponent acts first."
        moves = [f"{'you' if (state.first + i) % 2 == seat else 'the opponent'} {PAST[a]}"
                 for i, a in enumerate(state.history)]
        lines = [f"Your card: {known.card}. {order}", f"Moves: {', '.join(moves) if moves else 'none yet'}."]
        if state.history in ENDS:
            chips = self.seat_payoff(state, seat)
            shown = f" The opponent's card: {known.shown}." if known.shown else ""
            lines.append(f"Hand over:{shown} You {'won' if chips > 0 else 'lost'} {abs(chips):g} chips.")
        else:
            lines.append(f"Your move: {' or '.join(self.legal(state))}.")
        return "\n".join(lines)

    def instructions(self, seat: int) -> str:
        return (
            "You play Kuhn poker against one opponent. The deck has three cards, J < Q < K; each player antes 1 "
            "chip and gets one card, which the other cannot see. The first player may check or bet 1 chip. After "
            "a check, the second player may check (showdown: the higher card wins the pot of 2) or bet 1. "
            "Facing a bet, a player may call (showdown for a pot of 4: the higher card wins 2 chips) or fold "
            "(the bettor wins the ante: 1 chip). Answer with one word: check, bet, call or fold."
        )

    def move_text(self, action: str, seat: int, you: bool) -> str:
        return f"You {PAST[action]}" if you else f"the opponent {PAST[action]}"

    def ending(self, state: State, seat: int) -> str:
        chips = self.seat_payoff(state, seat)
        known = self.information(state, seat)
        shown = f": showdown, your {known.card} against the opponent's {known.shown}" if known.shown else ""
        return f"{shown}. You {'win' if chips > 0 else 'lose'} {abs(chips):g} chips."

    def equilibrium(self, state: State, seat: int) -> Distribution:
        """A Nash equilibrium strategy (Kuhn's family, bluffing frequency :data:`ALPHA`) for the seat to move."""
        card, history, legal = state.cards[seat], state.history, self.legal(state)
        first_to_act = state.first == seat
        if first_to_act and not history:
            p = {"J": ALPHA, "Q": 0.0, "K": 3 * ALPHA}[card]
            return _bet_or_not(p, "bet", "check", legal)
        if first_to_act:  # checked, then facing a bet
            return _bet_or_not({"J": 0.0, "Q": ALPHA + 1 / 3, "K": 1.0}[card], "call", "fold", legal)
        if history == ("bet",):
            return _bet_or_not({"J": 0.0, "Q": 1 / 3, "K": 1.0}[card], "call", "fold", legal)
        return _bet_or_not({"J": 1 / 3, "Q": 0.0, "K": 1.0}[card], "bet", "check", legal)

    scripted = {
        Opponent.RANDOM.value: Scripted(uniform, "checks or bets, calls or folds at random"),
        Opponent.EQUILIBRIUM.value: Scripted(equilibrium, "plays a Nash equilibrium strategy (it bluffs)"),
    }


def _bet_or_not(p: float, yes: str, no: str, legal: tuple[str, ...]) -> Distribution:
    probs = {yes: p, no: 1.0 - p}
    return tuple((probs[action], action) for action in legal if probs[action] > 0)


GAME = KuhnPoker()


@dataclass
class KuhnPokerReward(RewardSpec):
    """Kuhn poker's reward: the chips won or lost in the hand."""

    chips: float = 1.0
    """Paid per chip won at the end of the hand (a loss counts negative chips)."""
    success: float = 0.0
    """Paid once when the hand is won (the chips already pay for it)."""


class KuhnPokerEnv(TwoPlayerEnv[State]):
    """Play hands of Kuhn poker against a scripted opponent (or any policy): imperfect information.

    ## Description
    Three cards J < Q < K; each player antes 1 chip and is dealt one card the other cannot see. The first
    player checks or bets 1; after a check the second checks (showdown for 1) or bets; facing a bet a
    player calls (showdown for 2) or folds (the bettor wins 1). The agent is seat 0 and acts first unless
    ``first_player`` says otherwise. The opponent plays at random (``opponent="random"``) or a Nash
    equilibrium strategy (``"equilibrium"``: Kuhn's, bluffing a Jack with probability 1/6). The game's
    value is -1/18 chip per hand for the first player: best play against the equilibrium earns exactly
    that (``tabular_mdp()`` proves it in the tests), and the oracle (the exact best response to the
    env's opponent) exploits a random one.

    ## Action Space
    One word: ``check``, ``bet``, ``call`` or ``fold`` (case and whitespace ignored); ``check``/``bet``
    before any bet, ``call``/``fold`` facing one. Anything else is an invalid action.

    ## Observation Space
    The last moves, then the agent's card, who acts first, the moves so far, and the legal moves, or at
    the end the opponent's card (at a showdown) and the chips won. ``info["state"]`` is the agent's
    information state (card, acts first, moves, the card shown at a showdown), over which the game
    against a scripted opponent is an exact MDP (``tabular_mdp()``; the opponent's card summed out).

    ## Starting State
    One of the six deals, uniformly.

    ## Rewards
    Terms of :class:`KuhnPokerReward`: ``chips`` (1.0 per chip won, negative for chips lost), ``success``
    (0.0, a won hand), ``failure`` (0.0), ``step`` (0.0), ``invalid_action`` (-0.1).

    ## Episode End
    Terminated at a fold or showdown (success when the agent won chips). Truncated by the registered
    step limit (20) and by ``max_invalid_streak`` if set.

    ## Information
    The base keys, ``state``, ``outcome`` (``"win"`` or ``"loss"`` at the end), ``payoff`` (the chips won),
    and with a policy opponent ``opponent_invalid``.

    ## Arguments
    ``gym.make("textgym/KuhnPoker-v0", opponent="equilibrium", first_player="random")``; the PettingZoo AEC
    env: ``textgym.envs.kuhn_poker.aec_env()``.

    ## Version History
    * v0: initial version.
    """

    game = GAME
    reward_spec = KuhnPokerReward

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._best: dict[Information, str] | None = None

    def oracle_action(self) -> str:
        """The exact best response to the env's scripted opponent, solved once from :meth:`tabular_mdp`."""
        if self.tabular_mdp is None:
            raise RuntimeError("the Kuhn poker oracle best-responds to a scripted opponent; this one is a policy")
        if self._best is None:
            mdp = self.tabular_mdp()
            best = solve(mdp).policy
            self._best = {state: mdp.actions[i][best[i]] for i, state in enumerate(mdp.states) if mdp.actions[i]}
        return self._best[self.game.information(self.state, 0)]


def aec_env(**kwargs: object) -> AECEnv:
    """Kuhn poker as a PettingZoo AEC env (``max_cycles``, ``invalid_action``, ``render_mode``); player_0 acts first."""
    return make_aec(GAME, **kwargs)
