"""The scripted oracle: asks each env for the action its ground-truth solver would take.

Envs that ship an oracle implement ``oracle_action() -> str`` (privileged: it may read hidden state,
such as the secret word or the customer's intent). The oracle is an upper reference for benchmarks,
not an agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym

from textgym.policies.base import Policy


class OraclePolicy(Policy):
    """Calls ``oracle_action()`` on every sub-env of the vector env it is bound to."""

    def __init__(self) -> None:
        self.env: gym.vector.VectorEnv | None = None

    def bind(self, env: gym.vector.VectorEnv) -> None:
        self.env = env

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        if self.env is None:
            raise RuntimeError("OraclePolicy.act() before bind(env): the oracle reads the env's hidden state")
        try:
            return list(self.env.call("oracle_action"))
        except AttributeError as error:
            raise TypeError(
                f"this env has no oracle: {error}; implement oracle_action() on the env class"
            ) from error
