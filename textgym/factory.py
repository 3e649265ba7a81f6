"""Config to objects: the env, the policy and the algorithm of a run, and the Hydra schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    given as a node with ``_target_`` (e.g. CustomerService's ``customer``) is instantiated, once per env.
    """
    return gym.make(
        env.id,
        max_episode_steps=env.max_episode_steps,
        reward=dict(reward or {}),
        **{**instantiate(env.kwargs, _convert_="all"), **kwargs},
    )


def make_policy(policy: DictConfig) -> Policy:
    """The policy that the ``policy`` node's schema (see ``POLICIES``) or its ``_target_`` names."""
    schema = OmegaConf.get_type(policy)
    if schema in POLICIES:
        with naming_errors("policy"):
            config = OmegaConf.to_object(policy)
        return get_class(POLICIES[schema])(config)
    return instantiate(policy, _convert_="all")


def load_policy(policy: DictConfig, directory: Path) -> Policy:
    """A trained policy: ``Class.load(directory)``, the class found as :func:`make_policy` finds it.

    The convention every trainable policy follows: ``save(directory)`` writes what it learned, and the
    classmethod ``load(directory)`` returns the policy (TabularPolicy, SB3Policy, LLMPolicy).
    """
    schema = OmegaConf.get_type(policy)
    cls = get_class(POLICIES[schema] if schema in POLICIES else policy._target_)
    if not callable(getattr(cls, "load", None)):
        raise TypeError(f"{cls.__name__} has no classmethod load(directory): it cannot read a checkpoint")
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist: train one with "
                                "textgym train (the run's output dir is the checkpoint) or fix the path")
    if policy.get("trust_checkpoint"):  # the policy config opts in to formats that can run code (SB3's zip)
        return cls.load(directory, trust_checkpoint=True)
    return cls.load(directory)


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
