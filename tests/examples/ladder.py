"""Ladder: a tiny textgym env, written as the README's "Add your own environment" shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv
from textgym.envs.mdp import Branch, TabularMDP, enumerate_mdp

MOVES = {"step": (1, 0.9), "jump": (2, 0.5)}
"""Action word -> (rungs climbed, probability of not slipping)."""


@dataclass
class LadderReward(RewardSpec):
    """Ladder's reward weights."""

    slip: float = 0.0
    """Paid when a move slips and sends the climber back to the ground."""


class LadderEnv(TextEnv[str]):
    """Climb a ladder to the top rung; a slip sends you back to the ground.

    ## Action Space
    ``step`` (up 1 rung, slips with probability 0.1) or ``jump`` (up 2 rungs, slips with probability 0.5).

    ## Observation Space
    "You are on rung k of n." after the last move's result. ``info["state"]`` is the rung.

    ## Rewards
    ``success`` 1.0 at the top, ``slip`` 0.0 per slip, ``step`` 0.0, ``invalid_action`` -0.1.

    ## Episode End
    Terminated at the top rung; truncated by ``max_episode_steps``.

    ## Arguments
    ``gym.make("ladder:example/Ladder-v0", rungs=5)``
    """

    reward_spec = LadderReward
    max_observation_length = 200
    instructions = "Climb to the top of the ladder. Answer 'step' (safe, 1 rung) or 'jump' (risky, 2 rungs)."

    def __init__(self, rungs: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if rungs < 1:
            raise ValueError(f"rungs={rungs} must be at least 1")
        self.rungs, self.rung = rungs, 0

    def _reset(self, options: dict[str, Any] | None) -> None:
        self.rung = 0

    def parse_action(self, text: str) -> str:
        word = text.strip().lower()
        if word not in MOVES:
            raise InvalidAction("answer 'step' or 'jump'")
        return word

    def branches(self, rung: int, action: str) -> list[Branch]:
        """The MDP: where ``action`` leads from ``rung``, shared by ``_step`` and ``tabular_mdp``."""
        up, hold = MOVES[action]
        top = min(rung + up, self.rungs)
        return [Branch(hold, top, {"success": 1} if top == self.rungs else {}, top == self.rungs, top == self.rungs),
                Branch(1 - hold, 0, {"slip": 1}, False)]

    def _step(self, action: str) -> Outcome:
        outcomes = self.branches(self.rung, action)
        b = outcomes[0] if self.np_random.random() < outcomes[0].prob else outcomes[1]
        self.rung = b.next_state
        message = "You slipped and fell to the ground." if "slip" in b.terms else f"You climbed ({action})."
        return Outcome(message, dict(b.terms), b.terminated, b.success)

    def describe(self) -> str:
        return f"You are on rung {self.rung} of {self.rungs}."

    def valid_actions(self) -> list[str]:
        return list(MOVES)

    def _info(self) -> dict[str, Any]:
        return {"state": self.rung}

    def tabular_mdp(self) -> TabularMDP:
        text = lambda rung: f"You are on rung {rung} of {self.rungs}."  # noqa: E731
        return enumerate_mdp({0: 1.0}, lambda rung: list(MOVES), self.branches, text, self.reward)


gym.register("example/Ladder-v0", entry_point="ladder:LadderEnv", max_episode_steps=50)
