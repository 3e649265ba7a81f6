"""Config to objects: the env, the policy and the algorithm of a run, and the Hydra schemas."""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
from hydra.core.config_store import ConfigStore
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from textgym.algorithms.base import Algorithm, AlgorithmConfig
from textgym.algorithms.bc_config import BCConfig
from textgym.algorithms.grpo_config import GRPOConfig
from textgym.algorithms.ppo_config import PPOConfig
from textgym.algorithms.sb3 import DQNConfig, MaskablePPOConfig
from textgym.algorithms.sft_config import SFTConfig
from textgym.algorithms.tabular import TabularConfig
from textgym.loggers import LoggerConfig
from textgym.policies.base import Policy
from textgym.policies.llm_config import LLMPolicyConfig

if TYPE_CHECKING:  # torch loads only with a model, so the CLI starts cheaply
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from textgym.policies.llm import LLMPolicy

log = logging.getLogger(__name__)

POLICIES: dict[type, str] = {LLMPolicyConfig: "textgym.policies.llm.LLMPolicy"}
"""Policy config dataclass -> the dotted path of the policy class built as ``Class(config)`` (imported when used)."""


def store_schemas() -> None:
    """Register the dataclass schemas that type-check the YAML configs."""
    cs = ConfigStore.instance()
    cs.store(name="tabular_schema", group="algorithm", node=TabularConfig)
    cs.store(name="ppo_schema", group="algorithm", node=PPOConfig)
    cs.store(name="sft_schema", group="algorithm", node=SFTConfig)
    cs.store(name="bc_schema", group="algorithm", node=BCConfig)
    cs.store(name="grpo_schema", group="algorithm", node=GRPOConfig)
    cs.store(name="dqn_schema", group="algorithm", node=DQNConfig)
    cs.store(name="maskable_ppo_schema", group="algorithm", node=MaskablePPOConfig)
    cs.store(name="llm_schema", group="policy", node=LLMPolicyConfig)
    cs.store(name="logger_schema", group="logger", node=LoggerConfig)


@contextmanager
def naming_errors(node: str) -> Iterator[None]:
    """Prefix a config check's ValueError with its node, so ``gamma=1.5 must be ...`` reads ``algorithm.gamma=1.5 ...``."""
    try:
        yield
    except ValueError as error:
        message = str(error)
        raise ValueError(f"{node}.{message}" if re.match(r"\w+=", message) else f"{node}: {message}") from error


def make_env(env: DictConfig, reward: Mapping[str, float] | None = None, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with the ``env`` node's id, step limit and kwargs, and the reward weights.

    ``env.id`` may be ``module:namespace/Name-v0`` to import a user's module that registers it. A kwarg
    given as a node with ``_target_`` (e.g. CustomerService's ``customer``) is instantiated, once per env;
    so is an ``opponent`` given as a path (a string with a ``/``, e.g. ``runs/q`` or ``./q``): the policy
    that the ``textgym train`` run in that directory saved (:func:`load_checkpoint`).
    """
    kwargs = {**instantiate(env.kwargs, _convert_="all"), **kwargs}
    if isinstance(opponent := kwargs.get("opponent"), str) and "/" in opponent:
        try:
            kwargs["opponent"] = load_checkpoint(opponent)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"env.kwargs.opponent={opponent}: {error}") from None
    return gym.make(env.id, max_episode_steps=env.max_episode_steps, reward=dict(reward or {}), **kwargs)


class BaseModels:
    """Base causal LMs loaded once and shared by the LLM policies built one after another (a benchmark's cells).

    Keyed by ``(model, dtype)``. An LLM policy wraps its base in LoRA adapters, which peft injects into the
    base's modules in place; so a base is lent to one policy at a time, and lending it again first unloads
    the previous policy's adapters (that policy is then unusable). The next policy thus starts from the
    pristine base, exactly as from a fresh load, and only its own adapters and value head are new (or read
    from a checkpoint). Everything else a policy holds per env (history, seeded generator, caches) is its
    own and goes with it.
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str], tuple[PreTrainedModel, PreTrainedTokenizerBase]] = {}
        self._wrapped: dict[tuple[str, str], Any] = {}
        """Per base, the peft model of the policy it is lent to (unloaded at the next lend)."""
        self.lends = 0
        """Bases lent so far: a policy built on one is usable until this count grows again."""

    def __len__(self) -> int:
        """Base models loaded so far."""
        return len(self._loaded)

    def policy(self, config: LLMPolicyConfig, directory: Path | None = None) -> LLMPolicy:
        """A fresh policy of ``config`` on the shared base, or the one saved in ``directory`` (``LLMPolicy.load``:
        its saved config, its adapters and value head) on the base it names."""
        from textgym.policies.llm import LLMPolicy

        saved = config if directory is None else _saved_llm_config(directory)
        key = (saved.model, saved.dtype)
        model, tokenizer = self._lend(*key)
        try:
            policy = LLMPolicy(config, model, tokenizer) if directory is None else LLMPolicy.load(directory, model, tokenizer)
        except Exception:
            del self._loaded[key]  # adapters may be half-injected into the base: the next policy loads it afresh
            raise
        self._wrapped[key] = policy.lm
        return policy

    def _lend(self, model: str, dtype: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        import torch

        from textgym.models import load_causal_lm

        key = (model, dtype)
        self.lends += 1
        if key in self._wrapped:
            self._wrapped.pop(key).unload()  # the base's own modules back in place of the adapters
        if key not in self._loaded:
            log.info("loading base model %s (%s), shared by this run's LLM policies", model, dtype)
            self._loaded[key] = load_causal_lm(model, getattr(torch, dtype))
        base, tokenizer = self._loaded[key]
        return base.eval(), tokenizer


def _saved_llm_config(directory: Path) -> LLMPolicyConfig:
    """The config that ``LLMPolicy.save`` wrote in ``directory`` (its ``llm_policy.json``)."""
    path = Path(directory) / "llm_policy.json"
    if not path.exists():
        raise FileNotFoundError(f"{directory} holds no LLM policy (llm_policy.json): give the output dir of a "
                                "textgym train run with policy=llm, or a PPO checkpoint dir")
    return LLMPolicyConfig(**json.loads(path.read_text()))


def make_policy(policy: DictConfig, models: BaseModels | None = None) -> Policy:
    """The policy that the ``policy`` node's schema (see ``POLICIES``) or its ``_target_`` names.

    Given ``models``, an LLM policy is built on the base model it shares with the other policies built there.
    """
    schema = OmegaConf.get_type(policy)
    if schema in POLICIES:
        with naming_errors("policy"):
            config = OmegaConf.to_object(policy)
        if models is not None and isinstance(config, LLMPolicyConfig):
            return models.policy(config)
        return get_class(POLICIES[schema])(config)
    return instantiate(policy, _convert_="all")


def load_policy(policy: DictConfig, directory: Path, models: BaseModels | None = None) -> Policy:
    """A trained policy: ``Class.load(directory)``, the class found as :func:`make_policy` finds it.

    The convention every trainable policy follows: ``save(directory)`` writes what it learned, and the
    classmethod ``load(directory)`` returns the policy (TabularPolicy, SB3Policy, LLMPolicy); a ``load`` that takes
    a ``seed`` gets the config's, so that a loaded policy's randomness (a table's tie-breaks) is reproducible.
    Given ``models``, an LLM policy reads only its adapters and value head, onto the base model shared there.
    """
    schema = OmegaConf.get_type(policy)
    cls = get_class(POLICIES[schema] if schema in POLICIES else policy._target_)
    if not callable(getattr(cls, "load", None)):
        raise TypeError(f"{cls.__name__} has no classmethod load(directory): it cannot read a checkpoint")
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist: train one with "
                                "textgym train (the run's output dir is the checkpoint) or fix the path")
    if models is not None and schema is LLMPolicyConfig:
        with naming_errors("policy"):
            config = OmegaConf.to_object(policy)
        return models.policy(config, directory)
    options: dict[str, Any] = {}
    if policy.get("trust_checkpoint"):  # the policy config opts in to formats that can run code (SB3's zip)
        options["trust_checkpoint"] = True
    if policy.get("seed") is not None and "seed" in inspect.signature(cls.load).parameters:
        options["seed"] = policy.seed  # the config's seed drives the loaded policy's randomness (tie-breaks)
    return cls.load(directory, **options)


def load_checkpoint(directory: str | Path, models: BaseModels | None = None) -> Policy:
    """The policy a ``textgym train`` run saved in ``directory`` (its ``config.yaml`` names the policy class).

    Given ``models``, an LLM policy reads only its adapters and value head, onto the base model shared there.
    """
    config = Path(directory) / "config.yaml"
    if not config.exists():
        raise FileNotFoundError(f"{directory} has no config.yaml: give the output dir of a textgym train run")
    node = OmegaConf.load(config).policy
    if "_target_" not in node:  # a schema-backed policy node (policy=llm) lost its type in the saved YAML
        node = OmegaConf.merge(OmegaConf.structured(LLMPolicyConfig), node)
    try:
        return load_policy(node, Path(directory), models)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{directory} holds no saved policy ({error}): was its textgym train run "
                                "stopped before the end?") from None


def make_algorithm(
    algorithm: DictConfig, seed: int, checkpoint_dir: str | Path | None = None, resume: bool = False
) -> Algorithm:
    """The algorithm that the ``algorithm`` node's config dataclass names (``AlgorithmConfig.build``)."""
    with naming_errors("algorithm"):
        config = OmegaConf.to_object(algorithm)
    if not isinstance(config, AlgorithmConfig):
        raise ValueError(f"the algorithm config {type(config).__name__} is no AlgorithmConfig: give it a schema "
                         "(a dataclass subclassing textgym.algorithms.base.AlgorithmConfig)")
    return config.build(seed, checkpoint_dir, resume)
