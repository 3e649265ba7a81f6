"""Gymnasium wrappers that make a text env trainable by numeric RL libraries (stable-baselines3).

One wrapper per concern, composable in either order:

* :class:`TextToVector`: text observations → ``Box(-1, 1, (dim,))`` vectors (hashed n-grams by
  default, or any :class:`~textgym.envs.features.TextFeatures`);
* :class:`DiscreteActions`: ``info["valid_actions"]`` → ``Discrete(n)`` plus ``action_masks()``, the
  method sb3-contrib's ``MaskablePPO`` looks for.

Example::

    env = DiscreteActions(TextToVector(gym.make("textgym/FrozenLake-v0")), ActionIndex.positional(4))
    stable_baselines3.common.env_checker.check_env(env)  # passes
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from textgym.envs.features import HashedNgrams, TextFeatures

log = logging.getLogger(__name__)

NO_SUCH_ACTION = "<no action {index}>"
"""The text sent to the env for an index that names no action; every text env rejects it as invalid."""


class TextToVector(gym.ObservationWrapper):
    """Replaces each text observation by its feature vector (``float32``, values in ``[-1, 1]``).

    Example::

        env = TextToVector(gym.make("textgym/GuessNumber-v0"), HashedNgrams(dim=512))
        vector, info = env.reset(seed=0)  # vector.shape == (512,); info is the text env's
    """

    def __init__(self, env: gym.Env, features: TextFeatures | None = None) -> None:
        super().__init__(env)
        self.features = features if features is not None else HashedNgrams()
        self.observation_space = spaces.Box(-1.0, 1.0, (self.features.dim,), np.float32)

    def observation(self, observation: str) -> np.ndarray:
        return self.features([observation])[0]


@dataclass(frozen=True)
class ActionIndex:
    """The meaning of a discrete action index in a state with the given valid actions.

    Positional (no ``vocabulary``): index ``i`` is the ``i``-th entry of ``info["valid_actions"]``,
    which suits envs whose list is fixed and ordered (FrozenLake's four moves, GuessNumber's
    numbers). With a ``vocabulary``: index ``i`` is always ``vocabulary[i]``, valid or not (suits
    envs whose list changes, e.g. the free cells of a board).
    """

    size: int
    """Number of discrete actions."""
    vocabulary: tuple[str, ...] | None = None
    """Fixed action strings, one per index; None: positions in ``info["valid_actions"]``."""

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size={self.size} must be >= 1")
        if self.vocabulary is not None:
            if len(self.vocabulary) != self.size or len(set(self.vocabulary)) != self.size:
                raise ValueError(f"the vocabulary must hold size={self.size} distinct actions, got {self.vocabulary}")

    @classmethod
    def positional(cls, size: int) -> ActionIndex:
        """Index ``i`` is the ``i``-th valid action of the state."""
        return cls(size)

    @classmethod
    def from_vocabulary(cls, vocabulary: Sequence[str]) -> ActionIndex:
        """Index ``i`` is ``vocabulary[i]``."""
        return cls(len(vocabulary), tuple(vocabulary))

    def mask(self, valid_actions: Sequence[str]) -> np.ndarray:
        """Which indices name a valid action; all True when none does (every index is then invalid)."""
        if self.vocabulary is None:
            mask = np.arange(self.size) < len(valid_actions)
        else:
            valid = set(valid_actions)
            mask = np.array([action in valid for action in self.vocabulary])
        return mask if mask.any() else np.ones(self.size, bool)

    def action(self, index: Any, valid_actions: Sequence[str]) -> str:
        """The action text of ``index``; :data:`NO_SUCH_ACTION` for one out of range (the env rejects it)."""
        i = int(index)
        if self.vocabulary is not None:
            return self.vocabulary[i] if 0 <= i < self.size else NO_SUCH_ACTION.format(index=i)
        return valid_actions[i] if 0 <= i < min(self.size, len(valid_actions)) else NO_SUCH_ACTION.format(index=i)


class DiscreteActions(gym.Wrapper):
    """``Discrete(index.size)`` actions over a text env's valid actions, with ``action_masks()``.

    A masked or out-of-range index never raises: its text (the vocabulary entry, or
    :data:`NO_SUCH_ACTION`) goes to the env, which answers it as an invalid action (feedback text and
    the ``invalid_action`` reward term).

    Example::

        env = DiscreteActions(gym.make("textgym/GuessNumber-v0"), ActionIndex.positional(16))
        observation, info = env.reset(seed=0)
        observation, reward, terminated, truncated, info = env.step(7)  # guesses "8"
        env.action_masks()  # array of 16 booleans
    """

    def __init__(self, env: gym.Env, index: ActionIndex) -> None:
        super().__init__(env)
        self.index = index
        self.action_space = spaces.Discrete(index.size)
        self._valid: list[str] = []
        self._warned = False

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        return observation, self._track(info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(self.index.action(action, self._valid))
        return observation, reward, terminated, truncated, self._track(info)

    def action_masks(self) -> np.ndarray:
        """Booleans, one per index: True where the index names a valid action now."""
        return self.index.mask(self._valid)

    def _track(self, info: dict[str, Any]) -> dict[str, Any]:
        self._valid = list(info["valid_actions"])
        if self.index.vocabulary is None and len(self._valid) > self.index.size and not self._warned:
            self._warned = True
            log.warning("%d valid actions but only %d indices: the rest are unreachable; raise max_actions",
                        len(self._valid), self.index.size)
        return info
