"""Trained policies as opponents: a ``textgym train`` run dir turned back into its policy.

In a two-player env's config the opponent seat takes any policy (``textgym.envs.two_player``); Hydra
instantiates a node with ``_target_`` once per env::

    textgym train env=nim env.kwargs.opponent=runs/q          # a path (with a /): the same as the next line
    textgym train env=nim "env.kwargs.opponent={_target_: textgym.opponents.load_checkpoint, directory: runs/q}"
    textgym train env=nim "env.kwargs.opponent={_target_: textgym.policies.random.RandomPolicy, seed: 1}"
    textgym train env=nim "env.kwargs.opponent={_target_: textgym.opponents.llm_policy, greedy: true}"
"""

from __future__ import annotations

from textgym.factory import load_checkpoint
from textgym.policies.base import Policy
from textgym.policies.llm_config import LLMPolicyConfig

__all__ = ["llm_policy", "load_checkpoint"]


def llm_policy(**fields: object) -> Policy:
    """An LLM policy built from the fields of :class:`LLMPolicyConfig` (``policy=llm``'s), e.g. ``model=...``."""
    from textgym.policies.llm import LLMPolicy  # torch and transformers: only when an LLM opponent is asked for

    return LLMPolicy(LLMPolicyConfig(**fields))
