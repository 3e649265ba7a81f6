"""Async vector envs, built through every public path with Gymnasium's defaults, match a sync one."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest

from textgym.envs.checker import action_rng
from textgym.envs.text import SharedTextBatch

NUM_ENVS = 2
STEPS = 100


def _async_make_vec(env_id: str) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, NUM_ENVS, vectorization_mode="async")


def _async_env_fns(env_id: str) -> gym.vector.VectorEnv:
    return gym.vector.AsyncVectorEnv([lambda: gym.make(env_id) for _ in range(NUM_ENVS)])


def _actions(infos: dict, rng: np.random.Generator) -> list[str]:
    """A random listed action per sub-env (an invalid one where none is listed, as after the end)."""
    listed = infos["valid_actions"]
    return [str(rng.choice(listed[i])) if len(listed[i]) else "?" for i in range(NUM_ENVS)]


@pytest.mark.parametrize("make_async", [_async_make_vec, _async_env_fns], ids=["make_vec", "AsyncVectorEnv"])
def test_async_observations_equal_sync(env_id: str, make_async: Callable[[str], gym.vector.VectorEnv]) -> None:
    sync = gym.make_vec(env_id, NUM_ENVS, vectorization_mode="sync")
    async_ = make_async(env_id)
    try:
        assert async_.shared_memory  # the default path, which Gymnasium 1.4 reads once for a plain Text space
        rng = action_rng(0)
        expected, infos = sync.reset(seed=[1, 2])
        got, _ = async_.reset(seed=[1, 2])
        assert got == expected
        differed = expected[0] != expected[1]
        for step in range(STEPS):
            actions = _actions(infos, rng)
            expected, rewards, terminated, truncated, infos = sync.step(actions)
            got, async_rewards, async_terminated, async_truncated, _ = async_.step(actions)
            assert type(got) is tuple and got == expected, f"step {step}, actions {actions}"
            assert np.array_equal(async_rewards, rewards) and np.array_equal(async_terminated, terminated)
            assert np.array_equal(async_truncated, truncated)
            differed = differed or expected[0] != expected[1]
        assert differed, "the two sub-envs never differed: the test would not catch a shared buffer"
    finally:
        sync.close()
        async_.close()


def test_uncopied_batch_is_a_live_view() -> None:
    envs = gym.vector.AsyncVectorEnv([lambda: gym.make("textgym/GuessNumber-v0") for _ in range(2)], copy=False)
    try:
        view, _ = envs.reset(seed=[1, 2])
        assert isinstance(view, SharedTextBatch) and len(view) == 2
        first = tuple(view)
        envs.step(["guess 3", "guess 12"])
        assert tuple(view) != first and all("guess" in text for text in view)
        assert view[:1] == (view[0],)
    finally:
        envs.close()
