"""The text-env contract that every textgym environment shares.

A concrete environment subclasses :class:`TextEnv` and writes only its MDP:

* ``_reset(options)`` draws a new episode from ``self.np_random``;
* ``parse_action(text)`` turns the agent's text into the env's own action, or raises
  :class:`InvalidAction` with the reason;
* ``_step(action)`` applies one transition and returns an :class:`Outcome`;
* ``describe()`` is the text view of the current state, ``valid_actions()`` the admissible action
  strings, and ``instructions`` the task description shown to the agent once per episode.

The base class owns everything else: text spaces, seeding, invalid actions (feedback text, the
``invalid_action`` reward term, a counter and an optional truncation after too many in a row), the
reward spec and its overrides, ``info`` keys and text rendering.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import gymnasium as gym

from textgym.envs.text import PRINTABLE, TextSpace, excerpt

__all__ = ["PRINTABLE", "InvalidAction", "Outcome", "RewardSpec", "TextEnv", "excerpt", "match_choice"]

ActT = TypeVar("ActT")


class InvalidAction(ValueError):
    """Raised by ``parse_action`` or ``_step`` when the agent's action cannot be applied.

    The message says what was wrong; the agent sees it in the next observation.
    """


@dataclass
class RewardSpec:
    """Named reward weights. The reward of a step is the sum of ``weight * count`` over its terms.

    Environments subclass this to add their own shaping terms; ``gymnasium.make(id, reward={...})``
    overrides any weight by name.
    """

    success: float = 1.0
    """Paid once when the episode ends with the task accomplished."""
    failure: float = 0.0
    """Paid once when the episode ends with the task failed (e.g. a hole, a lost game)."""
    step: float = 0.0
    """Paid on every step, valid or not (a negative value is a time cost)."""
    invalid_action: float = -0.1
    """Paid for each action that could not be parsed or is not admissible in the state."""

    @classmethod
    def build(cls, overrides: RewardSpec | Mapping[str, float] | None = None) -> RewardSpec:
        """The spec with ``overrides`` applied; an unknown weight name raises ``ValueError``."""
        if isinstance(overrides, cls):
            return overrides
        if isinstance(overrides, RewardSpec):
            raise TypeError(f"expected a {cls.__name__}, got a {type(overrides).__name__}")
        overrides = dict(overrides or {})
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ValueError(
                f"unknown reward weight(s) {unknown} for {cls.__name__}; the known weights are {names}"
            )
        return cls(**{name: float(value) for name, value in overrides.items()})

    def weigh(self, counts: Mapping[str, float]) -> dict[str, float]:
        """The weighted value of each term that occurred (``counts`` maps term names to counts)."""
        return {name: getattr(self, name) * count for name, count in counts.items()}


@dataclass
class Outcome:
    """What one transition did, as ``_step`` reports it to the base class."""

    message: str
    """Feedback shown above the state description in the next observation."""
    terms: dict[str, float] = field(default_factory=dict)
    """Counts of reward terms that occurred (names of the env's :class:`RewardSpec` fields)."""
    terminated: bool = False
    """The episode reached a terminal state of the MDP."""
    success: bool = False
    """The task is accomplished (only meaningful when ``terminated``)."""


def match_choice(text: str, choices: Mapping[str, ActT]) -> ActT:
    """Parse ``text`` as one of ``choices`` (case and surrounding whitespace ignored)."""
    key = text.strip().lower()
    if key not in choices:
        raise InvalidAction(f"expected one of {', '.join(choices)}")
    return choices[key]


class TextEnv(gym.Env[str, str], Generic[ActT]):
    """Base class of textgym environments: text in, text out, named reward terms.

    Observations and actions are :class:`~textgym.envs.text.TextSpace` (``spaces.Text``) over printable
    characters; an env quotes the agent's text only through :func:`~textgym.envs.text.excerpt`. Every ``info`` holds:

    * ``valid_actions``: the admissible action strings in the new state (empty once it ended);
    * ``reward_terms``: the weighted reward terms of this step (they sum to the reward);
    * ``success``: whether the task has been accomplished;
    * ``invalid_actions``: how many invalid actions the episode has seen;
    * at reset, ``instructions``: the task description and action syntax.

    Arguments shared by every env: ``reward`` (a mapping of weight overrides or a spec),
    ``render_mode`` ("ansi" returns the text view, "human" prints it), and ``max_invalid_streak``
    (truncate after that many invalid actions in a row; ``None`` never does).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}
    reward_spec: ClassVar[type[RewardSpec]] = RewardSpec
    max_observation_length: ClassVar[int] = 4096
    max_action_length: ClassVar[int] = 256
    instructions: str = ""

    def __init__(
        self,
        reward: RewardSpec | Mapping[str, float] | None = None,
        render_mode: str | None = None,
        max_invalid_streak: int | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of {self.metadata['render_modes']}"
            )
        if max_invalid_streak is not None and max_invalid_streak < 1:
            raise ValueError(f"max_invalid_streak must be >= 1 or None, got {max_invalid_streak}")
        self.reward = self.reward_spec.build(reward)
        self.render_mode = render_mode
        self.max_invalid_streak = max_invalid_streak
        self.observation_space = TextSpace(self.max_observation_length)
        self.action_space = TextSpace(self.max_action_length, min_length=0)
        self._observation = ""
        self._ended = False
        self._success = False
        self._invalid_total = 0
        self._invalid_streak = 0

    # ---- what a concrete env writes -------------------------------------------------------------
    def _reset(self, options: dict[str, Any] | None) -> None:
        """Start a new episode, drawing any randomness from ``self.np_random``."""
        raise NotImplementedError

    def parse_action(self, text: str) -> ActT:
        """The env's action for ``text``; raises :class:`InvalidAction` saying what is wrong."""
        raise NotImplementedError

    def _step(self, action: ActT) -> Outcome:
        """Apply a parsed action (may still raise :class:`InvalidAction` if inadmissible here)."""
        raise NotImplementedError

    def describe(self) -> str:
        """The text view of the current state."""
        raise NotImplementedError

    def valid_actions(self) -> list[str]:
        """The admissible action strings in the current state."""
        raise NotImplementedError

    def _info(self) -> dict[str, Any]:
        """Env-specific ``info`` entries (e.g. a state id); none by default."""
        return {}

    @property
    def ended(self) -> bool:
        """Whether the episode has terminated (stepping further changes nothing)."""
        return self._ended

    # ---- the Gymnasium API ----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self._ended = self._success = False
        self._invalid_total = self._invalid_streak = 0
        self._reset(options)
        self._observation = self._checked(self.describe())
        info = self._step_info({})
        info["instructions"] = self.instructions
        if self.render_mode == "human":
            self.render()
        return self._observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._ended:  # stepping past the end changes nothing, as in Gymnasium's toy_text envs
            return self._observation, 0.0, True, False, self._step_info({})
        truncated = False
        try:
            if not isinstance(action, str):
                raise InvalidAction(f"actions are text, got a {type(action).__name__}")
            outcome = self._step(self.parse_action(action))
        except InvalidAction as error:
            self._invalid_total += 1
            self._invalid_streak += 1
            shown = excerpt(action) if isinstance(action, str) else type(action).__name__
            outcome = Outcome(f"Invalid action {shown}: {error}.", {"invalid_action": 1})
            truncated = self.max_invalid_streak is not None and self._invalid_streak >= self.max_invalid_streak
        else:
            self._invalid_streak = 0
        self._ended = outcome.terminated
        self._success = outcome.terminated and outcome.success
        terms = self.reward.weigh({"step": 1, **outcome.terms})
        self._observation = self._checked(f"{outcome.message}\n{self.describe()}")
        if self.render_mode == "human":
            self.render()
        return self._observation, sum(terms.values()), outcome.terminated, truncated, self._step_info(terms)

    def render(self) -> str | None:
        """The text view: returned for ``render_mode="ansi"``, printed for ``"human"``."""
        if self.render_mode == "ansi":
            return self._observation
        if self.render_mode == "human":
            print(self._observation)  # noqa: T201 - printing is what render_mode="human" asks for
        return None

    # ---- helpers --------------------------------------------------------------------------------
    def _step_info(self, terms: dict[str, float]) -> dict[str, Any]:
        return {
            "valid_actions": [] if self._ended else self.valid_actions(),
            "reward_terms": terms,
            "success": self._success,
            "invalid_actions": self._invalid_total,
            **self._info(),
        }

    def _checked(self, observation: str) -> str:
        if len(observation) > self.max_observation_length:
            raise RuntimeError(
                f"{type(self).__name__} produced a {len(observation)}-character observation, over its "
                f"max_observation_length={self.max_observation_length}: raise the limit in the class"
            )
        return observation
