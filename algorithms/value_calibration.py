"""How well an LLM policy's value head predicts exact values, on the states an evaluation visits.

PPO trains the value head on discounted returns (PPO's ``gamma``) of its sampling policy, treating a
truncation as an episode end. On envs that export their MDP (and report ``info["state"]``),
:class:`ValueRecorder` plays an evaluation as the policy and notes, at every step, the state, the step's
index in its episode, the value head's prediction and (score mode) the policy's distribution over the
valid actions; :func:`value_calibration` compares the predictions with

* ``V*``: the optimal values for PPO's ``gamma``, infinite-horizon: where the head should end up once
  the policy is optimal. The head sees no clock, so this stationary target is the one it can represent;
  it equals the value within the step limit wherever the steps left suffice to play the optimal policy
  out (e.g. on every state of an optimal walk across FrozenLake 4x4 in 12 steps).
* ``V^pi``: what the head's targets estimate now: the exact expected discounted return of the recorded
  sampling policy from the step's state within the episode's steps left (``solve(mdp, gamma,
  horizon=limit - t, policy=...)``), as PPO's truncated returns are. A policy that wanders would be
  worth much less without the limit (FrozenLake's edge penalty, paid forever), so the clock matters
  here. The policy is its action probabilities averaged over its visits to each state (the prompt may
  differ between visits, e.g. by the last move's message); on states it did not visit, those it gives
  on the state's own text.

Each comparison reports the mean absolute error, Pearson's correlation and a binned calibration curve;
:class:`textgym.plots.LogValueCalibration` logs the curve to W&B as a figure.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike

from textgym.algorithms.ground_truth import GroundTruth
from textgym.envs.mdp import TabularMDP, solve
from textgym.policies.base import Policy
from textgym.policies.llm_config import ActionMode

if TYPE_CHECKING:  # torch and transformers stay out of the CLI's imports
    from textgym.policies.llm import LLMPolicy, Query, QueryResult
    from textgym.policies.llm_prompts import Prompt


@dataclass
class Calibration:
    """Predictions against true values: mean absolute error, correlation and a binned calibration curve."""

    mae: float
    """Mean absolute error."""
    correlation: float
    """Pearson's correlation; nan when the predictions or the true values are all equal."""
    predicted: np.ndarray
    """Mean prediction in each non-empty bin (equal-width bins over the predictions' range)."""
    true: np.ndarray
    """Mean true value in each of those bins (on the diagonal when calibrated)."""
    counts: np.ndarray
    """Predictions in each of those bins."""


def calibrate(predicted: ArrayLike, true: ArrayLike, bins: int = 10) -> Calibration:
    """Compare ``predicted`` with ``true`` (equal-length 1-D arrays), binning by the prediction."""
    predicted, true = np.asarray(predicted, dtype=float), np.asarray(true, dtype=float)
    if predicted.ndim != 1 or predicted.shape != true.shape or not len(predicted):
        raise ValueError(f"need two non-empty 1-D arrays of equal length, got shapes {predicted.shape} and {true.shape}")
    if bins < 1:
        raise ValueError(f"bins={bins} must be >= 1")
    spread = predicted.std() * true.std()
    covariance = np.mean((predicted - predicted.mean()) * (true - true.mean()))
    correlation = float(covariance / spread) if spread > 0 else float("nan")
    edges = np.linspace(predicted.min(), predicted.max(), bins + 1)
    which = np.digitize(predicted, edges[1:-1])  # 0 .. bins-1; the maximum falls in the last bin
    counts = np.bincount(which, minlength=bins)
    full = counts > 0

    def bin_means(x: np.ndarray) -> np.ndarray:
        return np.bincount(which, weights=x, minlength=bins)[full] / counts[full]

    return Calibration(float(np.abs(predicted - true).mean()), correlation, bin_means(predicted), bin_means(true),
                       counts[full])


class ValueRecorder(Policy):
    """Acts as an :class:`~textgym.policies.llm.LLMPolicy` (as its ``act`` does) and records every step:
    the state (``info["state"]``), the steps taken before it in its episode, the value head's prediction
    and, in score mode, the action probabilities.

    Use it for one evaluation (the policy's weights must not change meanwhile: equal prompts share a pass).
    It records every step the policy takes, including those of slots that play on after their quota of
    episodes until the evaluation's last episode ends (same policy, same start states).
    """

    def __init__(self, policy: LLMPolicy) -> None:
        self.policy = policy
        self.states: list[Hashable] = []
        self.clock: list[int] = []
        """Per step, the steps taken before it in its episode (an ``info`` with ``instructions`` starts one)."""
        self.values: list[float] = []
        self.distributions: list[dict[str, float]] = []
        """Score mode: per step, each valid action's probability under the sampling policy."""
        self.instructions = ""
        self._memo: dict[Query, QueryResult] = {}
        self._slot_clock: dict[int, int] = {}

    def bind(self, env: gym.vector.VectorEnv) -> None:
        self.policy.bind(env)

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        import torch

        with torch.no_grad():
            decision = self.policy.decide(observations, infos, greedy=self.policy.config.greedy, memo=self._memo)
        if self.policy.config.action_mode is ActionMode.score:
            self.distributions += [self.probabilities(prompt) for prompt in decision.prompts]
        self.states += [info["state"] for info in infos]
        for slot, info in enumerate(infos):
            self._slot_clock[slot] = 0 if "instructions" in info else self._slot_clock.get(slot, -1) + 1
            self.clock.append(self._slot_clock[slot])
        self.values += decision.values.float().tolist()
        self.instructions = decision.prompts[0].instructions
        return decision.actions

    def probabilities(self, prompt: Prompt) -> dict[str, float]:
        """The sampling policy's probability of each valid action of ``prompt`` (score mode)."""
        import torch

        choices = list(range(len(prompt.actions)))
        with torch.no_grad():
            logprobs = self.policy.evaluate([prompt] * len(choices), choices, memo=self._memo).logprobs
        return dict(zip(prompt.actions, logprobs.float().exp().tolist()))

    def policy_table(self, mdp: TabularMDP) -> list[np.ndarray]:
        """Per state of ``mdp``, a distribution over ``mdp.actions[i]``: the recorded ones averaged over the
        visits; on unvisited states, the policy's on the state's text (as the env shows it after a reset)."""
        from textgym.policies.llm_prompts import Prompt

        totals = [np.zeros(len(actions)) for actions in mdp.actions]
        for state, distribution in zip(self.states, self.distributions):
            i = mdp.index(state)
            totals[i] += [distribution.get(a, 0.0) for a in mdp.actions[i]]
        for i, actions in enumerate(mdp.actions):
            if actions and not totals[i].any():
                distribution = self.probabilities(Prompt(self.instructions, mdp.texts[i], tuple(actions)))
                totals[i] += [distribution[a] for a in actions]
        return [t / t.sum() if len(t) else t for t in totals]


@dataclass
class ValueCalibration:
    """The value head over an evaluation's steps, against ``V*`` and (score mode) ``V^pi``."""

    optimal: Calibration
    """Against the optimal values for PPO's discount."""
    policy: Calibration | None
    """Against the exact values of the recorded sampling policy within the steps left; None in generate mode."""

    def metrics(self) -> dict[str, float]:
        """``value_mae`` and ``value_correlation`` (against ``V*``); ``value_mae_pi`` and ``value_correlation_pi``."""
        out = {"value_mae": self.optimal.mae, "value_correlation": self.optimal.correlation}
        if self.policy is not None:
            out |= {"value_mae_pi": self.policy.mae, "value_correlation_pi": self.policy.correlation}
        return out


def value_calibration(recorder: ValueRecorder, truth: GroundTruth, bins: int = 10) -> ValueCalibration:
    """The recorder's value predictions against ``truth.v_star`` and ``V^pi`` within the steps left
    (``truth.horizon`` minus the step's clock), both for ``truth.gamma`` (give :meth:`GroundTruth.of`
    PPO's gamma)."""
    if not recorder.states:
        raise ValueError("the recorder saw no steps: play an evaluation with it first")
    if max(recorder.clock) >= truth.horizon:
        raise ValueError(f"a step came after the step limit ({truth.horizon}): the env's limit and the truth's differ")
    rows = [truth.mdp.index(state) for state in recorder.states]
    optimal = calibrate(recorder.values, truth.v_star[rows], bins)
    if not recorder.distributions:
        return ValueCalibration(optimal, None)
    table = recorder.policy_table(truth.mdp)
    steps_left = [truth.horizon - t for t in recorder.clock]
    v_pi = {h: solve(truth.mdp, gamma=truth.gamma, horizon=h, policy=table).v for h in set(steps_left)}
    return ValueCalibration(optimal, calibrate(recorder.values, [v_pi[h][i] for h, i in zip(steps_left, rows)], bins))
