"""Two-player games written once: the rules as a :class:`Game`, served as a single-agent TextEnv and as a
PettingZoo AEC env.

A game file writes only its rules (a :class:`Game`: start states, whose turn, legal moves, transitions,
payoffs, what each seat sees). From them:

* :class:`TwoPlayerEnv` is the single-agent :class:`~textgym.envs.base.TextEnv`: the agent holds seat 0
  and an opponent plays seat 1, either a scripted one of the game (``opponent="random"``, ``"minimax"``,
  ...) or any object with a Policy's ``act(observations, infos) -> actions`` method (a trained policy,
  an opponent pool for self-play). Against a scripted opponent the env exports its exact MDP over the
  agent's information states (``tabular_mdp()``).
* :class:`TwoPlayerAEC` is the PettingZoo AEC env (``pettingzoo`` 1.27, the ``multiagent`` extra) of the
  same game, with text observations and actions and an action mask over the game's finite action set.

Envs import no policy: the opponent object is whatever the caller passes (Hydra's ``_target_`` turns a
config into one; see ``textgym.algorithms.self_play``).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

import numpy as np
from gymnasium import spaces

from textgym.envs.base import PRINTABLE, InvalidAction, Outcome, RewardSpec, TextEnv, excerpt
from textgym.envs.mdp import Branch, TabularMDP, enumerate_mdp

if TYPE_CHECKING:
    from pettingzoo import AECEnv

S = TypeVar("S", bound=Hashable)
E = TypeVar("E", bound=Enum)

Distribution = tuple[tuple[float, str], ...]
"""A mixed move: ``(probability, action)`` pairs, in the game's action order, probabilities > 0."""


class Scripted(NamedTuple):
    """A scripted player of a game."""

    policy: Callable[[Any, Any, int], Distribution]
    """``policy(game, state, seat)``: the move of ``seat``, to move in ``state``."""
    description: str
    """How it plays, for the instructions (e.g. "plays perfectly")."""


class Game(ABC, Generic[S]):
    """The rules of a two-player, zero-sum, turn-based game as pure functions of immutable states.

    Seat 0 and seat 1 take turns (``to_move``); chance acts only at the start (``starts``). A state
    must be hashable. ``information(state, seat)`` is what the seat knows: the state itself in games of
    perfect information; it must determine the seat's legal moves and, at the end, its payoff.
    """

    name: ClassVar[str]
    """The game's name, as PettingZoo's ``metadata["name"]``."""
    optimal: ClassVar[str]
    """The name in ``scripted`` of an optimal (Nash equilibrium) player: it holds any opponent to the game's value."""
    actions: ClassVar[tuple[str, ...]]
    """Every action string of the game, in a fixed order (the order of action masks and distributions)."""
    max_observation_length: ClassVar[int] = 512
    scripted: ClassVar[Mapping[str, Scripted]]
    """The game's scripted opponents by name."""

    @abstractmethod
    def starts(self, first: int) -> tuple[tuple[float, S], ...]:
        """The start states with seat ``first`` to move, and their probabilities (chance's deal)."""

    @abstractmethod
    def to_move(self, state: S) -> int:
        """The seat whose turn it is (meaningless once the game is over)."""

    @abstractmethod
    def legal(self, state: S) -> tuple[str, ...]:
        """The legal moves of the seat to move, in ``actions`` order (empty once the game is over)."""

    @abstractmethod
    def parse(self, text: str) -> str:
        """The action ``text`` names (case and whitespace forgiven), or :class:`InvalidAction` saying why."""

    @abstractmethod
    def play(self, state: S, action: str) -> S:
        """The state after the seat to move plays the legal ``action``."""

    @abstractmethod
    def payoff(self, state: S) -> float | None:
        """Seat 0's payoff at the end (seat 1 gets its negative), ``None`` while the game runs."""

    @abstractmethod
    def view(self, state: S, seat: int) -> str:
        """The text ``seat`` sees: the position as far as it may know it, then its turn or the result."""

    @abstractmethod
    def instructions(self, seat: int) -> str:
        """The rules and the action syntax, told to ``seat``."""

    @abstractmethod
    def move_text(self, action: str, seat: int, you: bool) -> str:
        """How a move reads in the log, by ``seat`` (``you``: written to the player who made it)."""

    @abstractmethod
    def ending(self, state: S, seat: int) -> str:
        """How the message of the game's last move ends, for ``seat`` (e.g. ``" and completed a line: you win!"``)."""

    def check(self, state: S, action: str) -> None:
        """Raise :class:`InvalidAction` saying why ``action`` is not a legal move in ``state``, if it is not."""
        legal = self.legal(state)
        if action not in legal:
            raise InvalidAction(f"{action} is not a legal move here; the legal moves are {', '.join(legal)}")

    def information(self, state: S, seat: int) -> Hashable:
        """What ``seat`` knows of ``state`` (perfect information: all of it)."""
        return state

    def terms(self, state: S, seat: int) -> dict[str, float]:
        """The reward terms a finished game pays ``seat``: ``success``, ``failure`` or ``draw`` once."""
        value = self.seat_payoff(state, seat)
        return {"success" if value > 0 else "failure" if value < 0 else "draw": 1}

    def seat_payoff(self, state: S, seat: int) -> float:
        """``seat``'s payoff in the finished game ``state``."""
        value = self.payoff(state)
        if value is None:
            raise ValueError("the game is not over")
        return value if seat == 0 else -value

    def mask(self, state: S) -> np.ndarray:
        """The legal moves as a 0/1 ``int8`` vector over ``actions``."""
        legal = set(self.legal(state))
        return np.array([action in legal for action in self.actions], dtype=np.int8)


@dataclass
class WinDrawLossReward(RewardSpec):
    """Reward weights of a game won, drawn or lost: by default 1 for a win, 0.5 for a draw, 0 for a loss."""

    draw: float = 0.5
    """Paid once when the game ends in a draw (a draw is not a success)."""


# ---- solving games of perfect information ----------------------------------------------------------


def mixed(choices: Sequence[str], legal: Sequence[str], epsilon: float) -> Distribution:
    """Uniform over ``choices`` but, with probability ``epsilon``, uniform over ``legal`` (pairs in ``legal`` order)."""
    probs = (epsilon / len(legal) + (1.0 - epsilon) * (action in choices) / len(choices) for action in legal)
    return tuple((prob, action) for prob, action in zip(probs, legal) if prob > 0)


def uniform(game: Game, state: Hashable, seat: int) -> Distribution:
    """The random opponent: a uniformly random legal move."""
    legal = game.legal(state)
    return mixed(legal, legal, 0.0)


class MinimaxGame(Game[S]):
    """A game of perfect information solved by memoised negamax (``scripted["minimax"]`` is optimal).

    A finished game is worth ``payoff * (1 + moves_left(state))`` to seat 0, so that among winning
    moves the quickest, and among losing ones the slowest, is preferred.
    """

    optimal = "minimax"

    @abstractmethod
    def moves_left(self, state: S) -> int:
        """An upper bound of the moves a finished game left unplayed (empty cells), for the score."""

    def move_value(self, state: S, action: str) -> float:
        """The negamax value of ``action`` for the seat to move in ``state``."""
        after = self.play(state, action)
        if (value := self.payoff(after)) is not None:
            return (value if self.to_move(state) == 0 else -value) * (1 + self.moves_left(after))
        return -self.negamax(after)

    def negamax(self, state: S) -> float:
        """The value of ``state`` (game running) for the seat to move under perfect play."""
        return _negamax(self, state)

    def best_moves(self, state: S) -> tuple[str, ...]:
        """The minimax-optimal moves of the seat to move, in ``actions`` order."""
        return _best_moves(self, state)

    def minimax(self, state: S, seat: int) -> Distribution:
        """The perfect opponent: uniform among the optimal moves."""
        return mixed(self.best_moves(state), self.legal(state), 0.0)


@functools.cache
def _negamax(game: MinimaxGame, state: Hashable) -> float:
    return max(game.move_value(state, action) for action in game.legal(state))


@functools.cache
def _best_moves(game: MinimaxGame, state: Hashable) -> tuple[str, ...]:
    values = {action: game.move_value(state, action) for action in game.legal(state)}
    best = max(values.values())
    return tuple(action for action, value in values.items() if value == best)


# ---- the single-agent env -----------------------------------------------------------------------------


class Actor(Protocol):
    """What can take the opponent's seat: anything with a Policy's ``act`` (``textgym.policies.base.Policy``)."""

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]: ...


class Strategy(Protocol):
    """An opponent whose mixed strategy is known exactly (e.g. a table of a policy's choices): the env samples
    its moves from it and, as for scripted opponents, exports the exact MDP."""

    def strategy(self, game: Game, state: Any, seat: int) -> Distribution: ...


class FirstPlayer(Enum):
    """Who makes the first move of a game."""

    AGENT = "agent"
    OPPONENT = "opponent"
    RANDOM = "random"
    """A fair coin from the env's seeded generator, drawn at every reset."""


OPPONENT_FIRST = {FirstPlayer.AGENT: 0.0, FirstPlayer.OPPONENT: 1.0, FirstPlayer.RANDOM: 0.5}
"""The probability that the opponent makes the first move."""
AGENT, OPPONENT = 0, 1
"""The seats of the single-agent env."""


def as_choice(kind: type[E], value: E | str, name: str) -> E:
    """``value`` as a member of the enum ``kind``; a ``ValueError`` naming the choices otherwise."""
    try:
        return kind(value)
    except ValueError:
        choices = [member.value for member in kind]
        raise ValueError(f"{name}={value!r} is not supported; use one of {choices}") from None


def sample(distribution: Distribution, rng: np.random.Generator) -> str:
    """An action drawn from ``(probability, action)`` pairs with one uniform number from ``rng``."""
    u = rng.random()
    for prob, action in distribution:
        u -= prob
        if u < 0:
            return action
    return distribution[-1][1]  # u within rounding error of 1


class TwoPlayerEnv(TextEnv[str], Generic[S]):
    """A :class:`Game` played as seat 0 against an opponent in seat 1 (see the module docstring).

    Arguments: ``opponent`` (a name in ``game.scripted``, an object with an exact ``strategy(game, state,
    seat)``, or an object with ``act``), ``first_player`` (``"agent"``, ``"opponent"`` or ``"random"``: a
    seeded coin at each reset), ``opponent_epsilon`` (the chance that an exactly known opponent plays a
    uniformly random legal move instead), and the base's. The observation budget is the game's.
    A policy opponent is asked with its own seat's view and an info holding ``valid_actions``,
    ``instructions`` and ``state`` (its information); an answer that is not a legal move is replaced
    by a uniformly random legal one and counted in ``info["opponent_invalid"]``. Policies that read the
    env's hidden state (the oracle) cannot sit there: use the game's scripted ``minimax`` instead.
    """

    game: ClassVar[Game]
    reward_spec = WinDrawLossReward

    def __init__(
        self,
        opponent: str | Strategy | Actor = "random",
        first_player: FirstPlayer | str = FirstPlayer.AGENT,
        opponent_epsilon: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.max_observation_length = self.game.max_observation_length
        super().__init__(**kwargs)
        opponent = opponent.value if isinstance(opponent, Enum) else opponent
        if isinstance(opponent, str):
            if opponent not in self.game.scripted:
                raise ValueError(f"opponent={opponent!r} is not supported; use one of {list(self.game.scripted)} "
                                 "or an object with act(observations, infos)")
        elif not callable(getattr(opponent, "act", None)) and not callable(getattr(opponent, "strategy", None)):
            raise TypeError(f"opponent must be a scripted opponent's name, have strategy(game, state, seat) or "
                            f"act(observations, infos); got a {type(opponent).__name__}")
        self.opponent = opponent
        self.first_player = as_choice(FirstPlayer, first_player, "first_player")
        if not 0.0 <= opponent_epsilon <= 1.0:
            raise ValueError(f"opponent_epsilon={opponent_epsilon!r} is a probability: give one in [0, 1]")
        self.opponent_epsilon = float(opponent_epsilon)
        self.instructions = self.game.instructions(AGENT) + " " + self._opponent_text()
        self.state: S = self.game.starts(AGENT)[0][1]
        self.opponent_invalid = 0

    def _opponent_text(self) -> str:
        who = self.game.scripted[self.opponent].description if isinstance(self.opponent, str) else "is another player"
        mistakes = (f", except that it plays a random legal move with probability {self.opponent_epsilon:g}"
                    if self.opponent_epsilon and self.exact else "")
        first = {FirstPlayer.AGENT: "You move first.", FirstPlayer.OPPONENT: "The opponent moves first.",
                 FirstPlayer.RANDOM: "A coin flip decides who moves first."}[self.first_player]
        return f"The opponent {who}{mistakes}. {first}"

    # ---- the opponent's seat ---------------------------------------------------------------------
    @property
    def exact(self) -> bool:
        """Whether the opponent's strategy is known exactly (a scripted one, or one with ``strategy``)."""
        return isinstance(self.opponent, str) or callable(getattr(self.opponent, "strategy", None))

    def replies(self, state: S) -> Distribution:
        """An exactly known opponent's move in ``state`` (its turn), with ``opponent_epsilon`` mixed in."""
        if isinstance(self.opponent, str):
            moves = self.game.scripted[self.opponent].policy(self.game, state, OPPONENT)
        else:
            moves = self.opponent.strategy(self.game, state, OPPONENT)
        scripted = {action: p for p, action in moves}
        legal, epsilon = self.game.legal(state), self.opponent_epsilon
        probs = ((epsilon / len(legal) + (1.0 - epsilon) * scripted.get(action, 0.0), action) for action in legal)
        return tuple((p, action) for p, action in probs if p > 0)

    def _opponent_move(self, state: S) -> str:
        if self.exact:
            return sample(self.replies(state), self.np_random)
        legal = self.game.legal(state)
        info = {"valid_actions": list(legal), "instructions": self.game.instructions(OPPONENT),
                "state": self.game.information(state, OPPONENT)}
        [answer] = self.opponent.act([self.game.view(state, OPPONENT)], [info])
        try:
            action = self.game.parse(answer)
        except InvalidAction:
            action = None
        if action not in legal:
            self.opponent_invalid += 1
            action = legal[int(self.np_random.integers(len(legal)))]
        return action

    def _advance(self, state: S, message: str) -> tuple[S, str]:
        """Let the opponent move until it is the agent's turn or the game is over."""
        while self.game.payoff(state) is None and self.game.to_move(state) == OPPONENT:
            action = self._opponent_move(state)
            text = self.game.move_text(action, OPPONENT, you=False)
            message = f"{message}; {text}" if message else text
            state = self.game.play(state, action)
        return state, message

    # ---- the TextEnv hooks ---------------------------------------------------------------------------
    def _reset(self, options: dict[str, Any] | None) -> None:
        if self.first_player is FirstPlayer.RANDOM:
            first = int(self.np_random.integers(2))
        else:
            first = OPPONENT if self.first_player is FirstPlayer.OPPONENT else AGENT
        self.opponent_invalid = 0
        self.state, _ = self._advance(draw_start(self.game.starts(first), self.np_random), "")

    def parse_action(self, text: str) -> str:
        return self.game.parse(text)

    def _step(self, action: str) -> Outcome:
        self.game.check(self.state, action)
        message = self.game.move_text(action, AGENT, you=True)
        # no move limit here: every game ends; truncation comes from max_episode_steps
        self.state, message = self._advance(self.game.play(self.state, action), message)
        if self.game.payoff(self.state) is None:
            return Outcome(message + ".")
        terms = self.game.terms(self.state, AGENT)
        success = self.game.seat_payoff(self.state, AGENT) > 0
        return Outcome(message + self.game.ending(self.state, AGENT), terms, True, success)

    def describe(self) -> str:
        return self.game.view(self.state, AGENT)

    def valid_actions(self) -> list[str]:
        return list(self.game.legal(self.state))

    @property
    def outcome(self) -> str | None:
        """The game's result for the agent (``"win"``, ``"loss"``, ``"draw"``), ``None`` while it runs."""
        if self.game.payoff(self.state) is None:
            return None
        value = self.game.seat_payoff(self.state, AGENT)
        return "win" if value > 0 else "loss" if value < 0 else "draw"

    def _info(self) -> dict[str, Any]:
        info = {"state": self.game.information(self.state, AGENT), "outcome": self.outcome}
        if self.game.payoff(self.state) is not None:
            info["payoff"] = self.game.seat_payoff(self.state, AGENT)
        if not self.exact:
            info["opponent_invalid"] = self.opponent_invalid
        return info

    # ---- ground truth ------------------------------------------------------------------------------------
    @property
    def tabular_mdp(self) -> Callable[[], TabularMDP] | None:
        """``tabular_mdp()``: the game against an exactly known opponent as an exact MDP over the agent's
        information states (``info["state"]``); ``None`` when the opponent is a policy, whose moves are
        not known in advance (so ground-truth users such as ``GroundTruth.of`` skip the env)."""
        return self._tabular_mdp if self.exact else None

    def _tabular_mdp(self) -> TabularMDP:
        return information_mdp(self)


def information_mdp(env: TwoPlayerEnv) -> TabularMDP:
    """The agent's MDP against ``env``'s exactly known opponent, over the agent's information states.

    Hidden state (the opponent's card) is summed out: each full state weighs by the probability that
    chance and the opponent lead to it (the agent's own moves are part of its information), so a
    transition from an information state averages over the full states it stands for. The states
    where the agent has made ``n`` moves are weighed layer by layer, before any is expanded.
    """
    game = env.game
    key = functools.partial(_agent_information, game)
    weights: dict[Hashable, dict[Hashable, float]] = {}
    start: dict[Hashable, float] = {}
    layer: dict[Hashable, float] = {}
    opponent_first = OPPONENT_FIRST[env.first_player]
    for first, chance in ((AGENT, 1.0 - opponent_first), (OPPONENT, opponent_first)):
        for p, state in game.starts(first) if chance > 0 else ():
            for q, reached in _opponent_turns(env, state, chance * p):
                layer[reached] = layer.get(reached, 0.0) + q
                start[key(reached)] = start.get(key(reached), 0.0) + q
    followers: dict[tuple[Hashable, str], list[tuple[float, Hashable]]] = {}
    while layer:
        next_layer: dict[Hashable, float] = {}
        for state, weight in layer.items():
            weights.setdefault(key(state), {})[state] = weight
            if game.payoff(state) is not None:
                continue
            for action in game.legal(state):
                outcomes = _opponent_turns(env, game.play(state, action), 1.0)
                followers[state, action] = outcomes
                for q, reached in outcomes:
                    next_layer[reached] = next_layer.get(reached, 0.0) + weight * q
        layer = next_layer

    def actions(information: Hashable) -> list[str]:
        return list(game.legal(next(iter(weights[information]))))

    def branches(information: Hashable, action: str) -> list[Branch]:
        group = weights[information]
        total = sum(group.values())
        merged: dict[Hashable, float] = {}
        for state, weight in group.items():
            for q, reached in followers[state, action]:
                merged[reached] = merged.get(reached, 0.0) + weight / total * q
        by_key: dict[Hashable, tuple[float, Hashable]] = {}
        for reached, prob in merged.items():
            p, _ = by_key.get(key(reached), (0.0, reached))
            by_key[key(reached)] = (p + prob, reached)
        return [_branch(game, prob, k, reached) for k, (prob, reached) in by_key.items()]

    def text(information: Hashable) -> str:
        return game.view(next(iter(weights[information])), AGENT)

    return enumerate_mdp(start, actions, branches, text, env.reward)


def _agent_information(game: Game, state: Hashable) -> Hashable:
    return game.information(state, AGENT)


def _branch(game: Game, prob: float, information: Hashable, state: Hashable) -> Branch:
    if game.payoff(state) is None:
        return Branch(prob, information, {}, False, False)
    return Branch(prob, information, game.terms(state, AGENT), True, game.seat_payoff(state, AGENT) > 0)


def _opponent_turns(env: TwoPlayerEnv, state: Hashable, prob: float) -> list[tuple[float, Hashable]]:
    """The states where the agent moves next (or the game ended) after the opponent's turns, with probabilities."""
    game = env.game
    if game.payoff(state) is not None or game.to_move(state) == AGENT:
        return [(prob, state)]
    return [out for p, action in env.replies(state) for out in _opponent_turns(env, game.play(state, action), prob * p)]


# ---- the PettingZoo AEC env -----------------------------------------------------------------------------


class TextActions(spaces.Text):
    """A ``Text`` action space that also knows the game's finite action set.

    ``sample(mask)`` with a 0/1 vector over ``actions`` (PettingZoo's action mask) returns one of the
    allowed action strings; any other mask is ``Text``'s own (random printable strings).
    """

    def __init__(self, actions: Sequence[str], max_length: int = 64, seed: int | None = None) -> None:
        super().__init__(max_length, min_length=0, charset=PRINTABLE, seed=seed)
        self.actions = tuple(actions)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if isinstance(mask, np.ndarray):
            allowed = np.flatnonzero(mask)
            if not len(allowed):
                raise ValueError("the action mask allows no action")
            return self.actions[int(allowed[self.np_random.integers(len(allowed))])]
        return super().sample(mask, probability)


def make_aec(game: Game, **kwargs: Any) -> AECEnv:
    """A PettingZoo AEC env of ``game``: ``max_cycles`` (truncate after that many moves per player, default
    100), ``invalid_action`` (the reward of an action that is not a legal move, default -0.1), ``render_mode``."""
    return aec_class(game)(**kwargs)


@functools.cache
def aec_class(game: Game) -> type[AECEnv]:
    """The PettingZoo AEC env class of ``game`` (PettingZoo, the ``multiagent`` extra, is imported here)."""
    from gymnasium.utils import seeding
    from pettingzoo import AECEnv

    class GameAEC(AECEnv):
        __doc__ = f"{game.name} as a PettingZoo AEC env: text observations and actions, an action mask."
        metadata = {"name": game.name, "render_modes": ["ansi", "human"], "is_parallelizable": False}

        def __init__(self, max_cycles: int = 100, invalid_action: float = -0.1, render_mode: str | None = None) -> None:
            super().__init__()
            if render_mode is not None and render_mode not in self.metadata["render_modes"]:
                raise ValueError(f"render_mode={render_mode!r} is not supported; use one of "
                                 f"{self.metadata['render_modes']}")
            if max_cycles < 1:
                raise ValueError(f"max_cycles={max_cycles} must be >= 1")
            self.game = game
            self.max_cycles, self.invalid_action, self.render_mode = max_cycles, float(invalid_action), render_mode
            self.possible_agents = ["player_0", "player_1"]
            text = spaces.Text(self.game.max_observation_length, charset=PRINTABLE)
            mask = spaces.Box(0, 1, (len(self.game.actions),), dtype=np.int8)
            self.observation_spaces = {agent: spaces.Dict({"text": text, "action_mask": mask})
                                       for agent in self.possible_agents}
            self.action_spaces = {a: TextActions(self.game.actions) for a in self.possible_agents}
            self.np_random, _ = seeding.np_random(None)

        def observation_space(self, agent: str) -> spaces.Space:
            return self.observation_spaces[agent]

        def action_space(self, agent: str) -> spaces.Space:
            return self.action_spaces[agent]

        def reset(self, seed: int | None = None, options: dict | None = None) -> None:
            if seed is not None:
                self.np_random, _ = seeding.np_random(seed)
            self.state = draw_start(self.game.starts(0), self.np_random)
            self.agents = list(self.possible_agents)
            self.rewards = dict.fromkeys(self.agents, 0.0)
            self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
            self.terminations = dict.fromkeys(self.agents, False)
            self.truncations = dict.fromkeys(self.agents, False)
            self.messages = dict.fromkeys(self.agents, "")
            self.steps = 0
            self.agent_selection = self.agents[self.game.to_move(self.state)]
            self.infos = {a: self._info(a) for a in self.agents}

        def _info(self, agent: str) -> dict[str, Any]:
            seat = self.possible_agents.index(agent)
            turn = self.game.payoff(self.state) is None and self.game.to_move(self.state) == seat
            return {"valid_actions": list(self.game.legal(self.state)) if turn else [],
                    "state": self.game.information(self.state, seat), "instructions": self.game.instructions(seat)}

        def observe(self, agent: str) -> dict[str, Any]:
            seat = self.possible_agents.index(agent)
            message = self.messages.get(agent, "")
            text = (f"{message}\n" if message else "") + self.game.view(self.state, seat)
            turn = self.game.payoff(self.state) is None and self.game.to_move(self.state) == seat
            mask = self.game.mask(self.state) if turn else np.zeros(len(self.game.actions), dtype=np.int8)
            return {"text": text, "action_mask": mask}

        def step(self, action: str | None) -> None:
            agent = self.agent_selection
            if self.terminations[agent] or self.truncations[agent]:
                self._was_dead_step(action)
                return
            self._cumulative_rewards[agent] = 0.0
            self.rewards = dict.fromkeys(self.agents, 0.0)
            seat = self.possible_agents.index(agent)
            try:
                if not isinstance(action, str):
                    raise InvalidAction(f"actions are text, got a {type(action).__name__}")
                move = self.game.parse(action)
                self.game.check(self.state, move)
            except InvalidAction as error:
                shown = excerpt(action) if isinstance(action, str) else type(action).__name__
                self.messages[agent] = f"Invalid action {shown}: {error}."
                self.rewards[agent] = self.invalid_action
            else:
                self.state = self.game.play(self.state, move)
                for other in self.agents:
                    text = self.game.move_text(move, seat, you=other == agent)
                    self.messages[other] = text[:1].upper() + text[1:] + "."
                if self.game.payoff(self.state) is not None:
                    for other in self.agents:
                        self.rewards[other] = self.game.seat_payoff(self.state, self.possible_agents.index(other))
                        self.terminations[other] = True
                else:
                    self.agent_selection = self.agents[self.game.to_move(self.state)]
            self.steps += 1
            if self.steps >= self.max_cycles * len(self.possible_agents) and not self.terminations[agent]:
                self.truncations = dict.fromkeys(self.agents, True)
            self.infos = {a: self._info(a) for a in self.agents}
            self._accumulate_rewards()
            if self.render_mode == "human":
                self.render()

        def render(self) -> str | None:
            text = self.observe(self.agent_selection)["text"] if self.agents else ""
            if self.render_mode == "human":
                print(text)  # noqa: T201 - printing is what render_mode="human" asks for
                return None
            return text

        def close(self) -> None:
            """Nothing to release."""

    GameAEC.__name__ = GameAEC.__qualname__ = f"{type(game).__name__}AEC"
    return GameAEC


def draw_start(starts: tuple[tuple[float, Hashable], ...], rng: np.random.Generator) -> Hashable:
    """A start state drawn with one uniform number (no draw when there is a single one)."""
    if len(starts) == 1:
        return starts[0][1]
    u = rng.random()
    for p, state in starts:
        u -= p
        if u < 0:
            return state
    return starts[-1][1]
