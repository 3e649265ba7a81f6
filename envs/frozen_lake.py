"""Text FrozenLake: Gymnasium's ``FrozenLake-v1`` MDP, told in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from gymnasium.envs.toy_text.frozen_lake import MAPS
from gymnasium.envs.toy_text.utils import categorical_sample

from textgym.envs.base import Outcome, RewardSpec, TextEnv, match_choice
from textgym.envs.mdp import Branch, Objective, TabularMDP, enumerate_mdp, solve

DIRECTIONS = ("left", "down", "right", "up")
"""Action words, in Gymnasium's action order (0 = left, 1 = down, 2 = right, 3 = up)."""
MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))
ACTIONS = {word: index for index, word in enumerate(DIRECTIONS)}


@dataclass
class FrozenLakeReward(RewardSpec):
    """FrozenLake's reward weights; the defaults give Gymnasium's rewards (1 at the goal, else 0)."""

    bump: float = 0.0
    """Paid when a move leaves the agent where it was (it walked into the edge of the lake)."""


class Transition(NamedTuple):
    """One possible result of an action: Gymnasium's ``P[s][a]`` entry plus its reward terms."""

    prob: float
    next_state: int
    terms: dict[str, float]
    terminated: bool
    direction: int
    """The direction actually taken (differs from the intended one when the agent slipped)."""


class FrozenLakeEnv(TextEnv[int]):
    """Cross a frozen lake from start (S) to goal (G) without falling into a hole (H).

    ## Description
    The MDP of Gymnasium's ``FrozenLake-v1`` (same maps, same slipping, same random draws under a
    seed), with the grid and the agent's position given as text. On slippery ice the agent moves in
    the intended direction with probability ``success_rate`` and otherwise in one of the two
    perpendicular directions with equal probability.

    ## Action Space
    One of the words ``left``, ``down``, ``right``, ``up`` (case and surrounding spaces ignored).
    Anything else is an invalid action: the agent stays put.

    ## Observation Space
    The last move's result, the grid with the agent drawn as ``@``, and the agent's row and column
    (1-based). ``info["state"]`` is Gymnasium's state id ``row * ncol + col``.

    ## Starting State
    The start tile ``S``.

    ## Rewards
    Terms of :class:`FrozenLakeReward`: ``success`` (reach G, 1.0), ``failure`` (fall in a hole,
    0.0), ``step`` (every step, 0.0), ``invalid_action`` (-0.1), ``bump`` (stay in place, 0.0).

    ## Episode End
    Terminated on reaching G or a hole. Truncated by the registered step limit (100 steps on 4x4,
    200 on 8x8, as in Gymnasium) and by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``, ``reward_terms``, ``success``, ``invalid_actions``) and ``state``.

    ## Arguments
    ``gym.make("textgym/FrozenLake-v0", map_name="4x4", is_slippery=True, success_rate=1/3,
    desc=None, reward={"bump": -0.05})``; ``desc`` (a list of row strings) replaces the named map.

    ## Version History
    * v0: initial version.
    """

    reward_spec = FrozenLakeReward
    max_observation_length = 1024

    def __init__(
        self,
        map_name: str = "4x4",
        is_slippery: bool = True,
        success_rate: float = 1.0 / 3.0,
        desc: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if desc is None and map_name not in MAPS:
            raise ValueError(f"unknown map_name {map_name!r}; use one of {sorted(MAPS)} or pass desc")
        self.desc = [list(row) for row in (desc or MAPS[map_name])]
        self.nrow, self.ncol = len(self.desc), len(self.desc[0])
        if sum(row.count("S") for row in self.desc) != 1:
            raise ValueError("the map needs exactly one start tile 'S'")
        start = next(r * self.ncol + row.index("S") for r, row in enumerate(self.desc) if "S" in row)
        self.initial_state_distrib = np.zeros(self.nrow * self.ncol)
        self.initial_state_distrib[start] = 1.0
        slips = (1.0 - success_rate) / 2.0
        self.P = [
            [self._transitions(s, a, is_slippery, success_rate, slips) for a in range(4)]
            for s in range(self.nrow * self.ncol)
        ]
        self._views = [self._view(s) for s in range(self.nrow * self.ncol)]
        self._probs = [[np.array([t.prob for t in ts]) for ts in row] for row in self.P]
        self.instructions = (
            "You are on a frozen lake, drawn as a grid: S is the start, F frozen ice (safe), H a hole "
            "(falling in ends the game), G the goal, and @ marks you. Reach G without falling into a hole. "
            + (
                f"The ice is slippery: you move the way you chose with probability {success_rate:.2f}, "
                "otherwise to one of the two sides. "
                if is_slippery
                else ""
            )
            + "Moving into the edge of the lake leaves you where you are. "
            "Answer with one word: left, down, right or up."
        )
        self.s = start
        self._oracle: dict[int, str] | None = None

    def _transitions(
        self, s: int, a: int, slippery: bool, success_rate: float, slips: float
    ) -> list[Transition]:
        row, col = divmod(s, self.ncol)
        if self.desc[row][col] in "GH":
            return [Transition(1.0, s, {}, True, a)]
        directions = [(a - 1) % 4, a, (a + 1) % 4] if slippery else [a]
        result = []
        for b in directions:
            prob = 1.0 if not slippery else success_rate if b == a else slips
            new_row = min(max(row + MOVES[b][0], 0), self.nrow - 1)
            new_col = min(max(col + MOVES[b][1], 0), self.ncol - 1)
            tile, new_s = self.desc[new_row][new_col], new_row * self.ncol + new_col
            terms = {"success": 1} if tile == "G" else {"failure": 1} if tile == "H" else {}
            if new_s == s:
                terms["bump"] = 1
            result.append(Transition(prob, new_s, terms, tile in "GH", b))
        return result

    def _reset(self, options: dict[str, Any] | None) -> None:
        self.s = int(categorical_sample(self.initial_state_distrib, self.np_random))

    def parse_action(self, text: str) -> int:
        return match_choice(text, ACTIONS)

    def _step(self, action: int) -> Outcome:
        transitions = self.P[self.s][action]
        t = transitions[categorical_sample(self._probs[self.s][action], self.np_random)]
        self.s = t.next_state
        # no time limit here: truncation comes from max_episode_steps (Gymnasium's TimeLimit)
        return Outcome(self._message(action, t), t.terms, t.terminated, success="success" in t.terms)

    def _message(self, action: int, t: Transition) -> str:
        intended, taken = DIRECTIONS[action], DIRECTIONS[t.direction]
        moved = f"You moved {taken}." if taken == intended else f"You tried {intended} but slipped {taken}."
        if "bump" in t.terms:
            moved = moved[:-1] + " into the edge and stayed put."
        if "success" in t.terms:
            return moved + " You reached the goal!"
        if "failure" in t.terms:
            return moved + " You fell into a hole."
        return moved

    def describe(self) -> str:
        return self._views[self.s]

    def _view(self, s: int) -> str:
        row, col = divmod(s, self.ncol)
        grid = "\n".join(
            "".join("@" if (r, c) == (row, col) else tile for c, tile in enumerate(line))
            for r, line in enumerate(self.desc)
        )
        return f"{grid}\nYou are at row {row + 1}, column {col + 1}."

    def valid_actions(self) -> list[str]:
        return list(DIRECTIONS)

    def _info(self) -> dict[str, Any]:
        return {"state": self.s}

    def oracle_action(self) -> str:
        """The move that maximises the probability of reaching the goal, sooner rather than later.

        The slight discount breaks ties that undiscounted success leaves: on ice that does not slip,
        walking into the edge keeps the goal just as reachable as stepping towards it.
        """
        if self._oracle is None:
            mdp = self.tabular_mdp()
            policy = solve(mdp, gamma=0.999, objective=Objective.success).policy
            self._oracle = {s: mdp.actions[i][a] for i, (s, a) in enumerate(zip(mdp.states, policy)) if a >= 0}
        return self._oracle[self.s]

    def tabular_mdp(self) -> TabularMDP:
        """The reachable part of Gymnasium's ``P`` table, with rewards from this env's reward spec."""
        return enumerate_mdp(
            start={s: p for s, p in enumerate(self.initial_state_distrib) if p > 0},
            actions=lambda s: DIRECTIONS,
            branches=lambda s, a: [
                Branch(t.prob, t.next_state, t.terms, t.terminated, "success" in t.terms) for t in self.P[s][ACTIONS[a]]
            ],
            text=self._views.__getitem__,
            reward=self.reward,
        )
