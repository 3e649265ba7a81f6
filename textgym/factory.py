"""Config to objects: the env, the policy and the algorithm of a run, and the Hydra schemas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from textgym.algorithms.tabular import TabularConfig, TabularLearner
from textgym.loggers import LoggerConfig
from textgym.policies.base import Policy

ALGORITHMS: dict[type, type] = {TabularConfig: TabularLearner}
"""Algorithm config dataclass -> the algorithm class it configures."""


def store_schemas() -> None:
    """Register the dataclass schemas that type-check the YAML configs."""
    cs = ConfigStore.instance()
    cs.store(name="tabular_schema", group="algorithm", node=TabularConfig)
    cs.store(name="logger_schema", group="logger", node=LoggerConfig)


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
    """The policy that the ``policy`` node's ``_target_`` names."""
    return instantiate(policy, _convert_="all")


def make_algorithm(algorithm: DictConfig, seed: int) -> Any:
    """The algorithm whose config dataclass backs the ``algorithm`` node."""
    config = OmegaConf.to_object(algorithm)
    if type(config) not in ALGORITHMS:
        raise ValueError(f"no algorithm is registered for config type {type(config).__name__}")
    return ALGORITHMS[type(config)](config, seed=seed)
