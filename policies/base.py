"""The policy interface: a batch of observations (one per vector-env slot) in, a batch of action strings out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym


class Policy(ABC):
    """Chooses one action string per observation.

    ``infos[i]`` is the ``info`` dict of slot ``i`` (``valid_actions``, ``state``, ...), so a policy
    sees exactly what the env contract offers an agent. Training and evaluation call :meth:`bind`
    with the vector env before the first :meth:`act`.
    """

    def bind(self, env: gym.vector.VectorEnv) -> None:
        """Attach the vector env this policy will act in (most policies need nothing from it)."""

    def save(self, directory: Path) -> None:
        """Write what the policy has learned under ``directory`` (nothing, for policies that learn nothing)."""

    @abstractmethod
    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        """One action per observation."""

    def action_probabilities(
        self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, float]] | None:
        """Per observation, the probability that :meth:`act` answers each valid action, for a policy that knows it
        exactly (in a fresh episode, without acting); None for one that does not. Exact probabilities make a
        tabulated strategy, and so exploitability, exact (``textgym.tournament.tabulate``)."""
        return None
