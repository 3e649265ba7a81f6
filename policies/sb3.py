"""A stable-baselines3 model as a textgym policy: text → feature vector → model → index → action text.

The policy owns the two encodings the model was trained through (the observation features and the
action index), so training (through :mod:`textgym.envs.wrappers`) and evaluation (on plain text
envs, through :func:`textgym.algorithms.evaluation.evaluate`) see the same mapping.

Saved policies are safe to load from anyone: the network's weights in safetensors and the rest in
JSON, from which the network is rebuilt. SB3's own ``sb3_model.zip`` (also written, for SB3's tools)
is a pickle that can run code when read: :meth:`SB3Policy.load` reads it only where there are no
safetensors weights and only with ``trust_checkpoint=True``.
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
from gymnasium import spaces

from textgym.envs.features import HashedNgrams, TextFeatures, make_features
from textgym.envs.wrappers import ActionIndex, DiscreteActions, TextToVector
from textgym.policies.base import Policy

MODEL_FILE = "sb3_model.zip"
"""The model in stable-baselines3's own format (``<Algorithm>.load`` reads it): a pickle, read only if trusted."""
WEIGHTS_FILE = "sb3_weights.safetensors"
"""The network's weights (its ``state_dict``), the safe format :meth:`SB3Policy.load` reads."""
POLICY_FILE = "sb3_policy.json"
"""Which algorithm, which features, which action index, and the network's shape."""


class SB3Algorithm(str, Enum):
    """The stable-baselines3 algorithms textgym trains, each mapped to its model class."""

    dqn = "dqn"
    maskable_ppo = "maskable_ppo"

    def model_class(self) -> type:
        """The SB3 algorithm class (imported on demand: it pulls in torch)."""
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
    A model is attached by training (``algorithm=dqn`` / ``algorithm=maskable_ppo``) or by :meth:`load`;
    the policy acts through the model's network (``model.policy``), so a DQN acts greedily even with
    ``deterministic=False`` (epsilon-greedy exploration belongs to training). ``trust_checkpoint``
    lets a checkpoint loaded through this config fall back to SB3's pickled zip (see :meth:`load`).
    """

    def __init__(
        self,
        features: TextFeatures | None = None,
        max_actions: int | None = None,
        vocabulary: Sequence[str] | None = None,
        deterministic: bool = True,
        trust_checkpoint: bool = False,
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
        self.trust_checkpoint = trust_checkpoint
        self.model: Any = None
        """The SB3 algorithm object that trained the network (None after loading safetensors weights)."""
        self.network: Any = None
        """The SB3 policy network that acts (``model.policy``); None until trained or loaded."""
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
        """Act with ``model`` (an instance of ``algorithm``'s class, trained through :meth:`wrap`)."""
        self.model, self.network, self.algorithm = model, model.policy, SB3Algorithm(algorithm)

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        if self.network is None or self.index is None:
            raise RuntimeError("this SB3Policy has no model: train it (algorithm=dqn or algorithm=maskable_ppo) "
                               "or read a saved one with SB3Policy.load(directory)")
        valid = [list(info.get("valid_actions", ())) for info in infos]
        masks = {"action_masks": np.stack([self.index.mask(v) for v in valid])} if self.algorithm.takes_masks else {}
        indices, _ = self.network.predict(self.features(observations), deterministic=self.deterministic, **masks)
        return [self.index.action(i, v) for i, v in zip(indices, valid)]

    def save(self, directory: str | Path) -> None:
        """Write the weights (``sb3_weights.safetensors``), the rest as JSON (``sb3_policy.json``), and,
        when a trained model is attached, SB3's own pickled format (``sb3_model.zip``)."""
        from safetensors.torch import save_file

        if self.network is None or self.index is None:
            raise RuntimeError("nothing to save: this SB3Policy has no model yet")
        save_file({k: v.contiguous() for k, v in self.network.state_dict().items()}, Path(directory, WEIGHTS_FILE))
        spec = {
            "algorithm": self.algorithm.value,
            "features": self.features.config(),
            "max_actions": self.index.size,
            "vocabulary": None if self.index.vocabulary is None else list(self.index.vocabulary),
            "deterministic": self.deterministic,
            "observation_dim": int(self.network.observation_space.shape[0]),
            "net_arch": self.network.net_arch,
        }
        Path(directory, POLICY_FILE).write_text(json.dumps(spec, indent=2))
        if self.model is not None:
            self.model.save(Path(directory, MODEL_FILE))

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu", trust_checkpoint: bool = False) -> SB3Policy:
        """Read a policy written by :meth:`save`: the network rebuilt from the JSON, its weights from safetensors.

        Nothing read can run code, unless the directory has no safetensors weights and
        ``trust_checkpoint`` is True: then the model comes from SB3's pickled ``sb3_model.zip``
        (``<Algorithm>.load``), which can run any code its author put in it.
        """
        directory = Path(directory)
        spec = json.loads((directory / POLICY_FILE).read_text())
        policy = cls(make_features(spec["features"]), spec["max_actions"] if spec["vocabulary"] is None else None,
                     spec["vocabulary"], spec["deterministic"], trust_checkpoint)
        algorithm = SB3Algorithm(spec["algorithm"])
        if (directory / WEIGHTS_FILE).exists():
            policy.algorithm = algorithm
            policy.network = _rebuild_network(algorithm, spec, directory / WEIGHTS_FILE, device)
        elif not (directory / MODEL_FILE).exists():
            raise FileNotFoundError(f"{directory} has neither {WEIGHTS_FILE} nor {MODEL_FILE}: not a saved SB3 policy")
        elif not trust_checkpoint:
            raise ValueError(
                f"{directory} has no {WEIGHTS_FILE}, only SB3's pickled {MODEL_FILE}, which can run code when loaded: "
                f"load it only if you trust its source, with trust_checkpoint=true (policy.trust_checkpoint=true)"
            )
        else:
            policy.attach(algorithm.model_class().load(directory / MODEL_FILE, device=device), algorithm)
        return policy


def _rebuild_network(algorithm: SB3Algorithm, spec: Mapping[str, Any], weights: Path, device: str) -> Any:
    """``algorithm``'s ``MlpPolicy`` network shaped as ``spec`` says, with the safetensors ``weights``."""
    from safetensors.torch import load_file

    network_class = algorithm.model_class().policy_aliases["MlpPolicy"]
    network = network_class(
        spaces.Box(-1.0, 1.0, (int(spec["observation_dim"]),), np.float32),  # as TextToVector's
        spaces.Discrete(int(spec["max_actions"])),  # as DiscreteActions'
        lr_schedule=lambda _: 0.0,  # only the (unused) optimizer reads it
        net_arch=[int(units) for units in spec["net_arch"]],
    )
    network.load_state_dict(load_file(weights, device=device))
    network.set_training_mode(False)
    return network.to(device)
