"""A stable-baselines3 model as a textgym policy: text → feature vector → model → index → action text.

The policy owns the two encodings the model was trained through (the observation features and the
action index), so training (through :mod:`textgym.envs.wrappers`) and evaluation (on plain text
envs, through :func:`textgym.algorithms.evaluation.evaluate`) see the same mapping.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.envs.features import HashedNgrams, TextFeatures, make_features
from textgym.envs.wrappers import ActionIndex, DiscreteActions, TextToVector
from textgym.policies.base import Policy

MODEL_FILE = "sb3_model.zip"
"""The model in stable-baselines3's own format (``<Algorithm>.load`` reads it)."""
POLICY_FILE = "sb3_policy.json"
"""Which algorithm, which features, which action index."""


class SB3Algorithm(str, Enum):
    """The stable-baselines3 algorithms textgym trains, each mapped to its model class."""

    dqn = "dqn"
    maskable_ppo = "maskable_ppo"

    def model_class(self) -> type:
        """The SB3 class (imported on demand: it pulls in torch)."""
        module, name = MODEL_CLASSES[self].split(":")
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError as error:
            raise ImportError(f"{self.value} needs stable-baselines3 and sb3-contrib ({error}): "
                              "pip install 'textgym[sb3]'") from error

    @property
    def takes_masks(self) -> bool:
        """Whether ``predict`` takes ``action_masks``."""
        return self is SB3Algorithm.maskable_ppo


MODEL_CLASSES = {SB3Algorithm.dqn: "stable_baselines3:DQN", SB3Algorithm.maskable_ppo: "sb3_contrib:MaskablePPO"}


class SB3Policy(Policy):
    """Acts with a trained stable-baselines3 model (DQN or MaskablePPO).

    ``features`` turns observation text into vectors (hashed n-grams by default). Actions are
    indices into ``info["valid_actions"]`` (``max_actions`` of them; None: as many as the first
    state of the env offers) or, with a ``vocabulary``, into that fixed list of action strings.
    A model is attached by training (``algorithm=dqn`` / ``algorithm=maskable_ppo``) or by :meth:`load`.
    """

    def __init__(
        self,
        features: TextFeatures | None = None,
        max_actions: int | None = None,
        vocabulary: Sequence[str] | None = None,
        deterministic: bool = True,
    ) -> None:
        if vocabulary is not None and max_actions is not None and max_actions != len(vocabulary):
            raise ValueError(f"max_actions={max_actions} but the vocabulary has {len(vocabulary)} actions: "
                             "leave max_actions unset (null) with a vocabulary")
        self.features = features if features is not None else HashedNgrams()
        self.index: ActionIndex | None = (
            ActionIndex.from_vocabulary(vocabulary) if vocabulary is not None
            else ActionIndex.positional(max_actions) if max_actions is not None else None
        )
        self.deterministic = deterministic
        self.model: Any = None
        self.algorithm: SB3Algorithm | None = None

    def wrap(self, env: gym.Env) -> gym.Env:
        """``env`` as the model sees it: feature vectors in, discrete indices (with masks) out.

        Without ``max_actions`` or a vocabulary, the first call sizes the index from the valid
        actions after ``env.reset(seed=0)``.
        """
        if self.index is None:
            _, info = env.reset(seed=0)
            self.index = ActionIndex.positional(len(info["valid_actions"]))
        return DiscreteActions(TextToVector(env, self.features), self.index)

    def attach(self, model: Any, algorithm: SB3Algorithm) -> None:
        """Use ``model`` (an instance of ``algorithm``'s class, trained through :meth:`wrap`)."""
        self.model, self.algorithm = model, SB3Algorithm(algorithm)

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        if self.model is None or self.index is None:
            raise RuntimeError("this SB3Policy has no model: train it (algorithm=dqn or algorithm=maskable_ppo) "
                               "or read a saved one with SB3Policy.load(directory)")
        valid = [list(info.get("valid_actions", ())) for info in infos]
        masks = {"action_masks": np.stack([self.index.mask(v) for v in valid])} if self.algorithm.takes_masks else {}
        indices, _ = self.model.predict(self.features(observations), deterministic=self.deterministic, **masks)
        return [self.index.action(i, v) for i, v in zip(indices, valid)]

    def save(self, directory: str | Path) -> None:
        """Write the model in SB3's format (``sb3_model.zip``) and the encodings (``sb3_policy.json``)."""
        if self.model is None or self.index is None:
            raise RuntimeError("nothing to save: this SB3Policy has no model yet")
        self.model.save(Path(directory, MODEL_FILE))
        spec = {
            "algorithm": self.algorithm.value,
            "features": self.features.config(),
            "max_actions": self.index.size,
            "vocabulary": None if self.index.vocabulary is None else list(self.index.vocabulary),
            "deterministic": self.deterministic,
        }
        Path(directory, POLICY_FILE).write_text(json.dumps(spec, indent=2))

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> SB3Policy:
        """Read a policy written by :meth:`save` (the model through ``<Algorithm>.load``)."""
        spec = json.loads(Path(directory, POLICY_FILE).read_text())
        policy = cls(make_features(spec["features"]), spec["max_actions"] if spec["vocabulary"] is None else None,
                     spec["vocabulary"], spec["deterministic"])
        algorithm = SB3Algorithm(spec["algorithm"])
        policy.attach(algorithm.model_class().load(Path(directory, MODEL_FILE), device=device), algorithm)
        return policy
