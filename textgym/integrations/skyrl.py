"""textgym envs in SkyRL: ``import textgym.integrations.skyrl`` registers every ``textgym/...`` Gymnasium id
with ``skyrl_gym`` under the same id, so a SkyRL config can name
``environment.env_class=textgym/FrozenLake-v0``.

>>> import skyrl_gym, textgym.integrations.skyrl  # doctest: +SKIP
>>> env = skyrl_gym.make("textgym/FrozenLake-v0", env_config={}, extras={"seed": 3})  # doctest: +SKIP
>>> messages, metadata = env.init([{"role": "system", "content": "Answer with one move."}])  # doctest: +SKIP
>>> out = env.step("right")  # doctest: +SKIP  (observations, reward, done, metadata)

``env_config`` (SkyRL's ``environment.skyrl_gym.<env_class>``) holds ``gym.make`` keyword arguments, e.g.
``reward`` weight overrides, or ``base_url`` for ``textgym/Remote-v0``; ``extras`` (the dataset row) may hold
``seed``, the reset seed that fixes the task, and ``max_turns`` (SkyRL's generator sets it), which truncates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

import textgym  # noqa: F401 - registers the envs
from textgym.integrations import missing_extra

try:
    import skyrl_gym
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput, ConversationType
except ModuleNotFoundError as error:  # the "skyrl" extra is not installed
    raise missing_extra(error, "skyrl") from None


class TextGymSkyRLEnv(BaseTextEnv):
    """A textgym env behind SkyRL-Gym's ``BaseTextEnv``: ``init(prompt)`` resets it and appends the
    instructions and first observation as a user message; ``step(llm_output)`` plays the output as one action.

    Each step's ``reward`` and ``done`` (terminated or truncated) are the env's; ``metadata`` holds the step's
    ``info`` (``reward_terms``, ``valid_actions``, ``success``, ...) plus ``terminated`` and ``truncated``.
    """

    def __init__(
        self,
        env_id: str,
        env_config: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        extras = dict(extras or {})
        self.env_id = env_id
        self.env = gym.make(env_id, **dict(env_config or {}))
        self.seed: int | None = None if extras.get("seed") is None else int(extras["seed"])
        limit = self.env.spec.max_episode_steps if self.env.spec else None
        self.max_turns = int(extras.get("max_turns") or limit or 0)
        self.episode_return = 0.0
        self.success = False
        self.invalid_actions = 0

    def init(self, prompt: ConversationType) -> tuple[ConversationType, dict[str, Any]]:
        observation, info = self.env.reset(seed=self.seed)
        self.turns, self.episode_return, self.success = 0, 0.0, False
        content = f"{info['instructions']}\n\n{observation}" if info.get("instructions") else observation
        return [*prompt, {"role": "user", "content": content}], info

    def step(self, action: str) -> BaseTextEnvStepOutput:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.turns += 1
        truncated = truncated or (not terminated and bool(self.max_turns) and self.turns >= self.max_turns)
        done = terminated or truncated
        self.episode_return += float(reward)
        self.success = bool(info.get("success", False))
        self.invalid_actions = int(info.get("invalid_actions", 0))
        return BaseTextEnvStepOutput(
            observations=[] if done else [{"role": "user", "content": observation}],
            reward=float(reward),
            done=done,
            metadata={**info, "terminated": terminated, "truncated": truncated, "observation": observation},
            postprocessed_action=None,
        )

    def get_metrics(self) -> dict[str, Any]:
        """The episode's return, success, turns and invalid actions (SkyRL averages them over episodes)."""
        return {
            "return": self.episode_return,
            "success": float(self.success),
            "turns": self.turns,
            "invalid_actions": self.invalid_actions,
        }

    def close(self) -> None:
        self.env.close()


def make_creator(env_id: str):  # noqa: ANN201 - a skyrl_gym EnvCreator
    """The creator skyrl_gym calls as ``creator(env_config=..., extras=...)`` for ``env_id``."""

    def create(
        env_config: Mapping[str, Any] | None = None, extras: Mapping[str, Any] | None = None
    ) -> TextGymSkyRLEnv:
        return TextGymSkyRLEnv(env_id, env_config, extras)

    create.__doc__ = f"{env_id} as a SkyRL-Gym text env."
    return create


def register_all() -> list[str]:
    """Register every ``textgym/...`` id that skyrl_gym does not know yet; returns the ids registered."""
    ids = [
        env_id
        for env_id in sorted(gym.registry)
        if env_id.startswith("textgym/") and env_id not in skyrl_gym.registry
    ]
    for env_id in ids:
        skyrl_gym.register(id=env_id, entry_point=make_creator(env_id))
    return ids


register_all()
