"""The uniform random policy over the valid actions: the chance-level baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textgym.policies.base import Policy


class RandomPolicy(Policy):
    """Picks uniformly among ``info["valid_actions"]`` with its own seeded generator."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        return [str(self.rng.choice(info["valid_actions"])) if len(info["valid_actions"]) else "" for info in infos]

    def action_probabilities(
        self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, float]]:
        return [{action: 1.0 / len(info["valid_actions"]) for action in info["valid_actions"]} for info in infos]
