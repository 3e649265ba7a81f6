"""Trained policies as opponents: a ``textgym train`` run dir turned back into its policy.

In a two-player env's config the opponent seat takes any policy (``textgym.envs.two_player``); Hydra
instantiates a node with ``_target_`` once per env::

    textgym train env=nim "env.kwargs.opponent={_target_: textgym.opponents.load_checkpoint, directory: runs/q}"
    textgym train env=nim "env.kwargs.opponent={_target_: textgym.policies.random.RandomPolicy, seed: 1}"
    textgym train env=nim "env.kwargs.opponent={_target_: textgym.opponents.llm_policy, greedy: true}"
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from textgym.factory import load_policy
from textgym.policies.base import Policy
from textgym.policies.llm_config import LLMPolicyConfig


def llm_policy(**fields: object) -> Policy:
    """An LLM policy built from the fields of :class:`LLMPolicyConfig` (``policy=llm``'s), e.g. ``model=...``."""
    from textgym.policies.llm import LLMPolicy  # torch and transformers: only when an LLM opponent is asked for

    return LLMPolicy(LLMPolicyConfig(**fields))


def load_checkpoint(directory: str | Path) -> Policy:
    """The policy a ``textgym train`` run saved in ``directory`` (its ``config.yaml`` names the policy)."""
    config = Path(directory) / "config.yaml"
    if not config.exists():
        raise FileNotFoundError(f"{directory} has no config.yaml: give the output dir of a textgym train run")
    node = OmegaConf.load(config).policy
    if "_target_" not in node:  # a schema-backed policy node (policy=llm) lost its type in the saved YAML
        node = OmegaConf.merge(OmegaConf.structured(LLMPolicyConfig), node)
    return load_policy(node, Path(directory))
