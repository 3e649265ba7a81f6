"""The value head against exact values: calibration metrics on synthetic data, and PPO's evaluations logging them."""

from __future__ import annotations

import math
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
import torch
import wandb
from tiny_llm import tiny_model, tiny_tokenizer

from textgym.algorithms.callbacks import LogMetrics
from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.algorithms.ppo import PPO
from textgym.algorithms.ppo_config import PPOConfig
from textgym.algorithms.value_calibration import ValueRecorder, calibrate, value_calibration
from textgym.plots import LogValueCalibration
from textgym.envs.mdp import solve
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig

lake = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False, max_episode_steps=8, reward={"bump": -0.05})


def test_mae_and_correlation_match_their_definitions() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(size=500)
    predicted = 0.5 * true + rng.normal(scale=0.3, size=500)
    c = calibrate(predicted, true)
    assert c.mae == pytest.approx(np.mean(np.abs(predicted - true)))
    assert c.correlation == pytest.approx(np.corrcoef(predicted, true)[0, 1])
    assert calibrate(3 * true - 1, true).correlation == pytest.approx(1.0)
    assert calibrate(-true, true).correlation == pytest.approx(-1.0)


def test_bins_average_by_prediction_and_show_a_miscalibration() -> None:
    true = np.linspace(0.0, 1.0, 101)
    c = calibrate(2 * true, true, bins=4)  # the head predicts twice the truth
    assert c.counts.sum() == 101 and len(c.counts) == 4
    np.testing.assert_allclose(c.true, c.predicted / 2)
    assert np.all(np.diff(c.predicted) > 0) and c.predicted[0] < 0.5 < 1.5 < c.predicted[-1]
    perfect = calibrate(true, true, bins=7)
    np.testing.assert_allclose(perfect.predicted, perfect.true)
    assert perfect.mae == 0.0


def test_empty_bins_are_dropped_and_constant_inputs_have_no_correlation() -> None:
    c = calibrate([0.0, 0.0, 1.0], [0.2, 0.4, 0.9], bins=10)
    np.testing.assert_allclose(c.predicted, [0.0, 1.0])
    np.testing.assert_allclose(c.true, [0.3, 0.9])
    np.testing.assert_array_equal(c.counts, [2, 1])
    assert math.isnan(calibrate([0.5, 0.5], [0.0, 1.0]).correlation)
    with pytest.raises(ValueError, match="equal length"):
        calibrate([1.0, 2.0], [1.0])


def test_value_calibration_compares_each_step_with_its_states_values() -> None:
    truth = GroundTruth.of(lake(), gamma=0.95)
    mdp = truth.mdp
    recorder = ValueRecorder(policy=None)  # filled by hand: the head predicts V* exactly, the policy is uniform
    live = [s for s, actions in zip(mdp.states, mdp.actions) if actions]
    recorder.states, recorder.clock = live * 2, [0] * len(live) + [6] * len(live)  # with 8 and 2 steps left
    recorder.values = [float(truth.v_star[mdp.index(s)]) for s in recorder.states]
    recorder.distributions = [{a: 0.25 for a in mdp.actions[mdp.index(s)]} for s in recorder.states]
    report = value_calibration(recorder, truth)
    assert report.optimal.mae == pytest.approx(0.0, abs=1e-12) and report.optimal.correlation == pytest.approx(1.0)
    uniform = [np.full(len(a), 1 / len(a)) if a else np.zeros(0) for a in mdp.actions]
    rows = [mdp.index(s) for s in live]
    v_pi = np.concatenate([solve(mdp, gamma=0.95, horizon=h, policy=uniform).v[rows] for h in (8, 2)])
    assert report.policy.mae == pytest.approx(np.mean(np.abs(truth.v_star[rows * 2] - v_pi)))
    assert truth.v_star[mdp.index(0)] == pytest.approx(0.95**5)  # start: the goal in 6 steps
    assert truth.horizon == 8


def test_the_recorder_counts_steps_from_each_episodes_start() -> None:
    tokenizer = tiny_tokenizer()
    policy = LLMPolicy(LLMPolicyConfig(trainable_layers=None, lora_r=8), tiny_model(tokenizer), tokenizer)
    recorder = ValueRecorder(policy)
    result = evaluate(vector_env(lake, 2), recorder, 6, seed=0)
    assert len(recorder.states) == len(recorder.clock) == len(recorder.values) == len(recorder.distributions)
    assert recorder.clock.count(0) >= 6 and max(recorder.clock) <= 7
    for slot in range(2):  # each slot's clock: 0, 1, ..., 0, 1, ...
        clock = recorder.clock[slot::2]
        assert clock[0] == 0 and all(b in (0, a + 1) for a, b in zip(clock, clock[1:]))
    assert sum(e.length for e in result.episodes) <= len(recorder.states)
    assert all(abs(sum(d.values()) - 1) < 1e-5 for d in recorder.distributions)


class Recorded:
    def __init__(self) -> None:
        self.logged: dict[str, object] = {}

    def log(self, metrics: dict[str, object], step: int) -> None:
        self.logged |= metrics


def test_ppo_evaluations_log_the_value_heads_calibration_on_a_tiny_llm() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tokenizer = tiny_tokenizer()
        policy = LLMPolicy(LLMPolicyConfig(trainable_layers=None, lora_r=8), tiny_model(tokenizer), tokenizer)
        logger = Recorded()
        config = PPOConfig(total_updates=1, num_envs=4, num_steps=4, eval_every=1, eval_episodes=4,
                           checkpoint_every=0, cpu=True)
        PPO(config).learn(lake, policy, [LogMetrics(logger), LogValueCalibration(logger)])
    finally:
        torch.set_num_threads(threads)
    for key in ("value_mae", "value_correlation", "value_mae_pi", "value_correlation_pi"):
        assert math.isfinite(logger.logged[f"eval/{key}"]), key
    assert 0.0 < logger.logged["eval/value_mae"] < 2.0
    assert isinstance(logger.logged["eval/value_calibration"], wandb.Image)
