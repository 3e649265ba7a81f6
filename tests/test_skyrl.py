"""The SkyRL-Gym adapter, driven through skyrl_gym's own API: oracle episodes with the local env's rewards and
ending, the chat messages it builds, SkyRL's turn limit and ``env_config`` reward overrides."""

from __future__ import annotations

import gymnasium as gym
import pytest
from conftest import ENV_IDS

skyrl_gym = pytest.importorskip("skyrl_gym", reason="needs textgym[skyrl]")
import textgym.integrations.skyrl  # noqa: E402, F401 - registers the envs with skyrl_gym

SYSTEM = [{"role": "system", "content": "Answer with one action."}]


def test_every_textgym_env_is_registered() -> None:
    assert {i for i in gym.registry if i.startswith("textgym/")} <= set(skyrl_gym.registry)
    assert "textgym/Remote-v0" in skyrl_gym.registry  # served envs too, with base_url in env_config


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_oracle_episode_has_the_local_rewards_and_ending(env_id: str) -> None:
    local = gym.make(env_id)
    observation, info = local.reset(seed=5)
    env = skyrl_gym.make(env_id, env_config={}, extras={"seed": 5})
    messages, metadata = env.init(list(SYSTEM))
    assert messages[:1] == SYSTEM and messages[1]["role"] == "user"
    assert messages[1]["content"].endswith(observation) and info["instructions"] in messages[1]["content"]
    assert metadata["valid_actions"] == info["valid_actions"]
    total = 0.0
    for _ in range(1000):  # the step limit ends it
        action = local.unwrapped.oracle_action()
        observation, reward, terminated, truncated, info = local.step(action)
        out = env.step(action)
        total += reward
        assert out["reward"] == reward and out["done"] == (terminated or truncated)
        assert out["metadata"]["reward_terms"] == info["reward_terms"]
        assert out["metadata"]["terminated"] == terminated and out["metadata"]["truncated"] == truncated
        if out["done"]:
            assert out["observations"] == []
            break
        assert out["observations"] == [{"role": "user", "content": observation}]
    assert out["done"] and out["metadata"]["success"] == info["success"]
    assert env.get_metrics() == pytest.approx(
        {
            "return": total,
            "success": float(info["success"]),
            "turns": env.turns,
            "invalid_actions": info["invalid_actions"],
        }
    )
    env.close()


def test_skyrl_turn_limit_truncates() -> None:
    env = skyrl_gym.make("textgym/GuessNumber-v0", env_config={}, extras={"seed": 0, "max_turns": 2})
    env.init([])
    assert not env.step("1")["done"]
    out = env.step("2")
    assert out["done"] and out["metadata"]["truncated"] and not out["metadata"]["terminated"]


def test_env_config_overrides_reward_weights() -> None:
    env = skyrl_gym.make(
        "textgym/FrozenLake-v0", env_config={"reward": {"invalid_action": -1.0}}, extras={"seed": 0}
    )
    env.init([])
    out = env.step("fly")
    assert out["reward"] == pytest.approx(-1.0) and out["metadata"]["reward_terms"]["invalid_action"] == -1.0
    with pytest.raises(ValueError, match="invalid_actoin"):
        skyrl_gym.make("textgym/FrozenLake-v0", env_config={"reward": {"invalid_actoin": -1.0}}, extras={})
