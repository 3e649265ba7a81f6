"""What travels between a textgym OpenEnv server and its clients: the Action, Observation and State models,
and the lossless encoding of an env's ``info`` into them.

An observation carries what a Gymnasium step returns: the text, the reward (OpenEnv's ``reward``), the
termination and truncation flags (``done`` is their *or*), and the ``info`` dict: ``valid_actions``,
``reward_terms``, ``success``, ``instructions`` (at reset only) as fields of their own, and every other
key (``invalid_actions``, an env's ``state``, ...) in ``info``. Tuples there are tagged, so that the client
rebuilds the same values (a tuple state id stays hashable, as tabular policies need).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from textgym.integrations import missing_extra

try:
    from openenv.core.env_server.types import Action, Observation, State
except ModuleNotFoundError as error:  # the "serve" extra is not installed
    raise missing_extra(error, "serve") from None
from pydantic import Field

TUPLE_TAG = "__tuple__"
"""The key of the one-entry object that stands for a tuple on the wire (JSON has lists only)."""
FIELDS = ("valid_actions", "reward_terms", "success", "instructions")
"""The ``info`` keys that are fields of :class:`TextObservation` rather than entries of its ``info``."""


class TextAction(Action):
    """One action of a textgym env: the agent's text, as it would pass it to ``env.step``."""

    text: str = Field(description="The action text, e.g. 'left' or 'lookup_order #W1234'")


class TextObservation(Observation):
    """A textgym observation with its reward terms, valid actions and episode flags."""

    text: str = Field(description="What the agent sees (feedback, then the state)")
    valid_actions: list[str] = Field(
        default_factory=list, description="Admissible actions now (empty once ended)"
    )
    reward_terms: dict[str, float] = Field(
        default_factory=dict, description="This step's weighted reward terms"
    )
    success: bool = Field(default=False, description="Whether the task has been accomplished")
    instructions: str | None = Field(default=None, description="The task and action syntax (at reset only)")
    seed: int | None = Field(default=None, description="The seed of this episode's reset (None: not seeded)")
    terminated: bool = Field(default=False, description="The episode reached a terminal state")
    truncated: bool = Field(default=False, description="The episode was cut by a step limit")
    info: dict[str, Any] = Field(default_factory=dict, description="Every other info entry (tuples tagged)")


class TextGymState(State):
    """The session's env id, the seed of its episode and the episode's transcript so far."""

    env_id: str = Field(description="The Gymnasium id this server serves")
    seed: int | None = Field(default=None, description="The seed of the current episode's reset")
    transcript: list[dict[str, Any]] = Field(
        default_factory=list, description="The episode's turns: action, text, reward, reward_terms"
    )


def to_wire(value: Any, key: str = "info") -> Any:
    """``value`` as JSON-ready data: tuples tagged, NumPy scalars as Python ones; other types raise."""
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {TUPLE_TAG: [to_wire(v, key) for v in value]}
    if isinstance(value, list):
        return [to_wire(v, key) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: to_wire(v, f"{key}.{k}") for k, v in value.items()}
    raise TypeError(
        f"info[{key!r}] is a {type(value).__name__}, which cannot be sent to a client: "
        "envs served over OpenEnv report only numbers, strings, lists, tuples and str-keyed dicts"
    )


def from_wire(value: Any) -> Any:
    """The inverse of :func:`to_wire` (a NamedTuple comes back as the equal plain tuple)."""
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and TUPLE_TAG in value:
            return tuple(from_wire(v) for v in value[TUPLE_TAG])
        return {k: from_wire(v) for k, v in value.items()}
    return value


def observation_of(text: str, info: Mapping[str, Any], **fields: Any) -> TextObservation:
    """The observation of a Gymnasium reset or step (``fields``: reward, done, the flags, seed)."""
    extras = {key: to_wire(value, key) for key, value in info.items() if key not in FIELDS}
    known = {key: info[key] for key in FIELDS if key in info}
    return TextObservation(text=text, info=extras, **known, **fields)


def info_of(observation: TextObservation) -> dict[str, Any]:
    """The ``info`` dict the env returned with ``observation`` (the inverse of :func:`observation_of`)."""
    info: dict[str, Any] = {
        "valid_actions": list(observation.valid_actions),
        "reward_terms": dict(observation.reward_terms),
        "success": observation.success,
        **from_wire(observation.info),
    }
    if observation.instructions is not None:
        info["instructions"] = observation.instructions
    return info
