"""Exact ground truth for envs that export their MDP: optimal values, Q-errors and regret."""

from __future__ import annotations

from functools import cached_property

import gymnasium as gym
import numpy as np

from textgym.envs.mdp import Solution, TabularMDP, policy_table, solve, start_value
from textgym.policies.tabular import StateKey, TabularPolicy


class GroundTruth:
    """The solved MDP behind one env: ``Q*`` and ``V*`` for a discount ``gamma`` (infinite-horizon), and
    ``V*`` of the start within the step limit.

    ``optimal_return`` is the best expected (undiscounted) episode return within ``horizon`` steps,
    the ``V*(start)`` that regret is measured from.
    """

    def __init__(self, mdp: TabularMDP, horizon: int, gamma: float = 1.0) -> None:
        self.mdp, self.horizon, self.gamma = mdp, horizon, gamma
        self.optimal_return = start_value(mdp, solve(mdp, horizon=horizon))

    @cached_property
    def _discounted(self) -> Solution:
        """Solved only when Q* or V* is asked for: regret needs just the finite-horizon value."""
        return solve(self.mdp, gamma=self.gamma)

    @property
    def q_star(self) -> list[np.ndarray]:
        return self._discounted.q

    @property
    def v_star(self) -> np.ndarray:
        return self._discounted.v

    @classmethod
    def of(cls, env: gym.Env, gamma: float = 1.0) -> GroundTruth | None:
        """The ground truth of ``env``, or None when it does not export ``tabular_mdp()``."""
        export = getattr(env.unwrapped, "tabular_mdp", None)
        horizon = env.spec.max_episode_steps if env.spec is not None else None
        if export is None or horizon is None:
            return None
        return cls(export(), horizon, gamma)

    def policy_return(self, policy: TabularPolicy) -> float:
        """The exact expected return of ``policy``'s greedy choices within the step limit."""
        mdp = self.mdp
        table = policy_table(mdp, lambda i: policy.greedy(mdp.states[i], mdp.actions[i]))
        return start_value(mdp, solve(mdp, horizon=self.horizon, policy=table))

    def metrics(self, policy: TabularPolicy) -> dict[str, float]:
        """``q_error`` (max |Q - Q*| over the MDP's pairs) and exact ``regret`` of a state-keyed table."""
        if policy.state_key is not StateKey.STATE:
            return {}
        q_error = max(
            (float(np.abs(policy.values(s, actions) - q).max()) for s, actions, q in zip(self.mdp.states, self.mdp.actions, self.q_star) if actions),
            default=0.0,
        )
        return {"q_error": q_error, "regret": self.optimal_return - self.policy_return(policy)}
