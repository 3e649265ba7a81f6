"""A bridge from textgym envs to TRL's ``GRPOTrainer(environment_factory=...)``, and ``algorithm=grpo``.

TRL creates one environment instance per rollout (and reuses it), calls ``reset(**row)`` with the
dataset row and appends the returned text to the prompt's last user message; every public method with
type hints and a Google-style docstring becomes a tool whose reply goes back to the model; ``get_reward()``
scores the finished rollout. Here the row is a task (``seed``), ``reset`` returns the env's first
observation, each tool call is one env step, and ``get_reward`` is the episode's return.

Envs whose actions are a fixed set of words (FrozenLake's ``left``, ``down``, ...) get one tool per action;
others get one tool ``act(action)`` taking the action's text.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from functools import partial

import gymnasium as gym
import torch
import trl
from datasets import Dataset
from trl.chat_template_utils import qwen3_chat_template

from textgym.algorithms.grpo_config import GRPOConfig
from textgym.algorithms.trl_base import TRLAlgorithm

log = logging.getLogger(__name__)

TOOL_HINT = "Take each action by calling a tool; its reply tells you what happened."
"""Appended to the env's instructions: they describe actions as answers, the model plays them as tool calls."""


class EpisodeTools:
    """One episode of a textgym env, driven by tool calls (subclasses add the tools)."""

    def __init__(self, env_fn: Callable[[], gym.Env]) -> None:
        self.env = env_fn()
        self.episode_return = 0.0
        self.ended = True

    def reset(self, prompt: list[dict[str, str]], seed: int) -> str:
        """Start the task ``seed`` (the dataset row; ``prompt`` is TRL's); returns the first observation."""
        observation, info = self.env.reset(seed=seed)
        self.episode_return, self.ended = 0.0, False
        return observation + _valid(info)

    def get_reward(self) -> float:
        """The episode's return so far (an episode the model leaves unfinished counts as it stands)."""
        return self.episode_return

    def _step(self, action: str) -> str:
        if self.ended:
            raise RuntimeError("the episode is over: answer without calling a tool")
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.episode_return += float(reward)
        self.ended = bool(terminated or truncated)
        if self.ended:
            return f"{observation}\nThe episode is over: {'success' if info['success'] else 'failure'}."
        return observation + _valid(info)


def _valid(info: dict) -> str:
    return f"\nValid actions: {', '.join(info['valid_actions'])}." if info.get("valid_actions") else ""


class TextActionTools(EpisodeTools):
    """The generic bridge: one tool taking the action's text."""

    def act(self, action: str) -> str:
        """Take one action in the environment.

        Args:
            action: The action, written as the instructions say (one of the valid actions).

        Returns:
            What happened and the new observation, or how the episode ended.
        """
        return self._step(action)


def _action_tool(action: str) -> Callable[[EpisodeTools], str]:
    def tool(self) -> str:  # no annotation on self: TRL turns every annotated parameter into a tool argument
        return self._step(action)

    tool.__name__ = tool.__qualname__ = action
    tool.__doc__ = f"Take the action '{action}' in the environment.\n\nReturns:\n    What happened and the new observation."
    return tool


def tools_class(env: gym.Env) -> type[EpisodeTools]:
    """The TRL environment class of ``env``: one tool per action when its actions (at reset) are a fixed set of
    lower-case words that stays the same in every state, else :class:`TextActionTools`."""
    _, info = env.reset(seed=0)
    actions = list(info.get("valid_actions", ()))
    fixed = actions and all(a.isidentifier() and a.islower() for a in actions)
    if fixed:
        _, _, _, _, info = env.step(actions[0])
        fixed = list(info.get("valid_actions", actions)) in (actions, [])
    if not fixed:
        return TextActionTools
    name = type(env.unwrapped).__name__.removesuffix("Env") + "Tools"
    return type(name, (EpisodeTools,), {a: _action_tool(a) for a in actions} | {"__doc__": f"{name}: one tool per action."})


def environment_factory(env_fn: Callable[[], gym.Env]) -> Callable[[], EpisodeTools]:
    """What ``GRPOTrainer(environment_factory=...)`` takes: a callable making one bridged env per rollout."""
    probe = env_fn()
    cls = tools_class(probe)
    probe.close()
    return partial(cls, env_fn)


def task_dataset(env_fn: Callable[[], gym.Env], tasks: int) -> Dataset:
    """One row per task: the env's instructions (with :data:`TOOL_HINT`) as the system turn and its seed.
    The user turn is empty: ``reset`` fills it with the first observation."""
    env, rows = env_fn(), []
    for seed in range(tasks):
        _, info = env.reset(seed=seed)
        system = f"{info.get('instructions', '')}\n{TOOL_HINT}".strip()
        rows.append({"prompt": [{"role": "system", "content": system}, {"role": "user", "content": ""}], "seed": seed})
    env.close()
    return Dataset.from_list(rows)


class GRPO(TRLAlgorithm[GRPOConfig]):
    """TRL's GRPO over whole episodes played by tool calls (``algorithm=grpo``); ``self.trainer.state.log_history``
    holds every metric it logged."""

    def _setup(self) -> None:
        cfg, policy = self.config, self.policy
        self.steps = cfg.max_steps
        tokenizer = copy.deepcopy(policy.tokenizer)  # the policy keeps its own template for acting
        tokenizer.chat_template = qwen3_chat_template  # one TRL parses tool calls of (ChatML tokens)
        args = trl.GRPOConfig(
            output_dir=self.scratch_dir(), max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.per_device_train_batch_size, num_generations=cfg.num_generations,
            max_completion_length=cfg.max_completion_length, max_tool_calling_iterations=cfg.max_tool_calling_iterations,
            learning_rate=cfg.learning_rate, beta=cfg.beta, temperature=cfg.temperature, logging_steps=cfg.logging_steps,
            bf16=cfg.bf16, use_cpu=cfg.cpu or not torch.cuda.is_available(), seed=self.seed, gradient_checkpointing=False,
            save_strategy="no", report_to="none", disable_tqdm=True,
        )
        self.trainer = trl.GRPOTrainer(
            model=policy.lm, args=args, train_dataset=task_dataset(self.env_fn, cfg.tasks), processing_class=tokenizer,
            environment_factory=environment_factory(self.env_fn), callbacks=self.trainer_callbacks(),
        )
