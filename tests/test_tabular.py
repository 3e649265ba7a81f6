"""Tabular Q-learning and SARSA learn slippery FrozenLake; the table saves and loads."""

from __future__ import annotations

from collections import Counter
from functools import partial

import gymnasium as gym
import pytest

from textgym.algorithms.callbacks import Callback, TrainingContext
from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.tabular import TabularConfig, TabularLearner
from textgym.policies.tabular import StateKey, TabularPolicy

frozen_lake = partial(gym.make, "textgym/FrozenLake-v0")


@pytest.mark.parametrize("method", ["q_learning", "sarsa"])
def test_learns_slippery_frozen_lake(method: str) -> None:
    config = TabularConfig(method=method, episodes=10_000, alpha=0.1, gamma=0.99, eval_every=0)
    policy = TabularLearner(config, seed=0).learn(frozen_lake, TabularPolicy(seed=0))
    result = evaluate(vector_env(frozen_lake, 8), policy, episodes=1000, seed=123)
    assert result.metrics()["success_rate"] >= 0.70  # the optimum is 0.74


def test_untrained_table_fails() -> None:
    result = evaluate(vector_env(frozen_lake, 8), TabularPolicy(seed=0), episodes=200, seed=123)
    assert result.metrics()["success_rate"] < 0.1


def test_observation_keys_and_save_load(tmp_path) -> None:
    env_fn = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False)
    config = TabularConfig(episodes=300, alpha=0.5, gamma=0.9, eval_every=0)
    policy = TabularLearner(config, seed=1).learn(env_fn, TabularPolicy(StateKey.OBSERVATION, seed=1))
    assert evaluate(vector_env(env_fn, 2), policy, episodes=20, seed=0).metrics()["success_rate"] == 1.0
    policy.save(tmp_path)
    loaded = TabularPolicy.load(tmp_path)
    assert loaded.state_key is StateKey.OBSERVATION and dict(loaded.q) == dict(policy.q)


def test_callbacks_see_progress_and_can_stop() -> None:
    class StopAfter(Callback):
        def __init__(self) -> None:
            self.evals: list[dict] = []

        def on_episode_end(self, ctx: TrainingContext) -> bool:
            return ctx.episode < 30

        def on_eval(self, ctx: TrainingContext) -> None:
            self.evals.append(ctx.last_eval)

    callback = StopAfter()
    config = TabularConfig(episodes=1000, eval_every=10, eval_episodes=4, eval_num_envs=2)
    TabularLearner(config).learn(frozen_lake, TabularPolicy(seed=0), [callback])
    assert len(callback.evals) == 3 and callback.evals[0]["episodes"] == 4


def test_config_errors_give_the_reason() -> None:
    with pytest.raises(ValueError, match="alpha"):
        TabularConfig(alpha=0.0)
    with pytest.raises(ValueError, match="epsilon_end"):
        TabularConfig(epsilon_start=0.1, epsilon_end=0.5)
    with pytest.raises(TypeError, match="tabular policy"):
        TabularLearner(TabularConfig()).learn(frozen_lake, object())


def test_q_error_and_regret_fall_during_training() -> None:
    class Record(Callback):
        rows: list[dict] = []

        def on_eval(self, ctx: TrainingContext) -> None:
            self.rows.append(ctx.last_eval)

    record = Record()
    config = TabularConfig(episodes=6000, eval_every=1000, eval_episodes=10, eval_num_envs=2)
    TabularLearner(config, seed=0).learn(frozen_lake, TabularPolicy(seed=0), [record])
    first, last = record.rows[0], record.rows[-1]
    assert last["q_error"] < first["q_error"] and last["q_error"] < 0.3
    assert last["regret"] < first["regret"] and last["regret"] < 0.02


def test_nested_state_keys_survive_save_and_load(tmp_path) -> None:
    """Kuhn poker's information state is a named tuple holding a tuple (the moves so far): JSON makes lists."""
    _, info = gym.make("textgym/KuhnPoker-v0", first_player="opponent").reset(seed=0)
    assert info["state"].history  # the opponent's move so far
    policy = TabularPolicy(seed=0)
    policy.q[info["state"]][info["valid_actions"][-1]] = 1.0
    policy.save(tmp_path)
    loaded = TabularPolicy.load(tmp_path)
    assert loaded.q == policy.q and loaded.act([""], [info]) == [info["valid_actions"][-1]]


def test_action_probabilities_are_the_greedy_choice_with_ties_shared() -> None:
    policy = TabularPolicy(seed=0)
    policy.q[3] = {"left": 1.0, "down": 1.0, "right": 0.5}
    info = {"state": 3, "valid_actions": ["left", "down", "right", "up"]}
    assert policy.action_probabilities(["obs"], [info]) == [{"left": 0.5, "down": 0.5, "right": 0.0, "up": 0.0}]
    answers = Counter(policy.act(["obs"] * 400, [info] * 400))
    assert set(answers) == {"left", "down"} and 150 < answers["left"] < 250
