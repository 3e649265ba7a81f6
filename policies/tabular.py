"""A table of action values, keyed by the env's state id or by the observation text."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from textgym.policies.base import Policy


class StateKey(str, Enum):
    """What identifies a state in the table."""

    STATE = "state"
    """``info["state"]``, the state id an env exposes (FrozenLake's cell index)."""
    OBSERVATION = "observation"
    """The observation text itself (works on every env; more keys when observations carry feedback)."""


class TabularPolicy(Policy):
    """Greedy over a table ``q[state][action]`` (0 for unseen pairs), ties broken at random.

    The table is what tabular Q-learning and SARSA train; ``save``/``load`` keep it as JSON.
    """

    def __init__(self, state_key: StateKey | str = StateKey.STATE, seed: int | None = None) -> None:
        self.state_key = StateKey(state_key)
        self.q: defaultdict[Hashable, dict[str, float]] = defaultdict(dict)
        self.rng = np.random.default_rng(seed)

    def key(self, observation: str, info: Mapping[str, Any]) -> Hashable:
        """The table key of a state."""
        if self.state_key is StateKey.OBSERVATION:
            return observation
        if "state" not in info:
            raise KeyError("this env exposes no info['state']; use the policy's state_key=observation")
        return _plain(info["state"])

    def values(self, key: Hashable, actions: Sequence[str]) -> np.ndarray:
        """Q-values of ``actions`` in state ``key``."""
        row = self.q[key]
        return np.array([row.get(a, 0.0) for a in actions])

    def greedy(self, key: Hashable, actions: Sequence[str]) -> str:
        """A highest-valued action, ties broken uniformly at random."""
        values = self.values(key, actions)
        best = np.flatnonzero(values == values.max())
        return actions[best[0] if len(best) == 1 else self.rng.choice(best)]

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        return [self.greedy(self.key(o, info), list(info["valid_actions"])) for o, info in zip(observations, infos)]

    def action_probabilities(
        self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, float]]:
        """Uniform over the highest-valued valid actions (how :meth:`greedy` breaks ties)."""
        out = []
        for observation, info in zip(observations, infos):
            actions = list(info["valid_actions"])
            values = self.values(self.key(observation, info), actions)
            best = values == values.max()
            out.append({action: float(top) / best.sum() for action, top in zip(actions, best)})
        return out

    def save(self, directory: str | Path) -> None:
        """Write the table to ``directory/q_table.json`` (keys keep their type: ints stay ints)."""
        table = [[key, row] for key, row in self.q.items()]
        Path(directory, "q_table.json").write_text(json.dumps({"state_key": self.state_key.value, "q": table}))

    @classmethod
    def load(cls, directory: str | Path, seed: int | None = None) -> TabularPolicy:
        """Read a table written by :meth:`save`."""
        data = json.loads(Path(directory, "q_table.json").read_text())
        policy = cls(data["state_key"], seed)
        for key, row in data["q"]:
            policy.q[_from_json(key)] = row
        return policy


def _plain(value: Any) -> Hashable:
    """NumPy scalars (from vector-env infos) as plain Python values, so table keys match."""
    return value.item() if isinstance(value, np.generic) else value


def _from_json(value: Any) -> Hashable:
    """A table key read back from JSON: its lists, at any depth, as the tuples they were (Kuhn poker's
    information state holds the moves so far; a named tuple equals, and hashes as, the plain tuple)."""
    return tuple(_from_json(item) for item in value) if isinstance(value, list) else value
