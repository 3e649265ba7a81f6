"""The LLM-played customer: swappable, seeded, printable, and sound under ``textgym check``'s core checks."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from omegaconf import OmegaConf
from tiny_llm import save_tiny

from textgym.envs.checker import check_hostile_actions
from textgym.envs.customer_service_data import Persona, Request, RequestKind
from textgym.envs.llm_customer import LLMCustomer, writing_prompt
from textgym.factory import make_env


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny"))


def play(model: str, seed: int) -> list[str]:
    env = gym.make("textgym/CustomerService-v0", customer=LLMCustomer(model, max_new_tokens=8))
    observation, _ = env.reset(seed=seed)
    transcript = [observation]
    for _ in range(4):
        observation, *_ = env.step(env.unwrapped.oracle_action())
        transcript.append(observation)
    return transcript


def test_seeded_episodes_replay_and_stay_printable(tiny_dir: Path) -> None:
    first, again, other = play(str(tiny_dir), 0), play(str(tiny_dir), 0), play(str(tiny_dir), 1)
    assert first == again and first != other
    assert "Customer: " in first[0]
    env = gym.make("textgym/CustomerService-v0")
    assert all(env.observation_space.contains(o) for o in first)


def test_hostile_actions_never_reach_the_model(tiny_dir: Path) -> None:
    gym.register("test/CustomerServiceTinyLLM-v0", entry_point="textgym.envs.customer_service:CustomerServiceEnv",
                 max_episode_steps=20, kwargs={"customer": LLMCustomer(str(tiny_dir), max_new_tokens=4)})
    check_hostile_actions("test/CustomerServiceTinyLLM-v0", seed=0)


def test_prompt_holds_the_persona_and_the_current_request() -> None:
    persona = Persona("Ada Park", "ada@example.com", "94110",
                      (Request(RequestKind.CANCEL, "W100"), Request(RequestKind.REFUND, "W200", amount=12000)), False)
    chat = [("Agent", "Hello, how can I help?")]
    assert "cancel order W100; then a refund for order W200 of $120.00" in writing_prompt(persona, 0, chat)
    assert "W100" not in writing_prompt(persona, 1, chat) and "goodbye" in writing_prompt(persona, 2, chat)
    assert "Agent: Hello, how can I help?" in writing_prompt(persona, 0, chat)


def test_hydra_config_instantiates_one_customer_per_env(tiny_dir: Path) -> None:
    cfg = OmegaConf.load(Path(__file__).parents[2] / "conf" / "env" / "customer_service_llm.yaml")
    cfg.env.id = "textgym/CustomerService-v0"
    cfg.env.max_episode_steps = None
    cfg.env.kwargs.update({"num_orders": 3, "customer": {**cfg.env.kwargs.customer, "model": str(tiny_dir)}})
    a, b = make_env(cfg.env), make_env(cfg.env)
    assert isinstance(a.unwrapped.customer, LLMCustomer) and a.unwrapped.customer is not b.unwrapped.customer
