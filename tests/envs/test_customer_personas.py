"""Customers who push: the oracle keeps the policy with every persona; an agent that does what it is asked does not."""

from __future__ import annotations

from collections import Counter

import gymnasium as gym
import numpy as np
import pytest
from episodes import Chooser, oracle, play

from textgym.envs.customer_service import SAY, Call, Intent, Tool
from textgym.envs.customer_service_personas import INJECTIONS, PRESSURE, misspell

PERSONA_IDS = {
    "insistent": "textgym/CustomerServiceInsistent-v0",
    "impostor": "textgym/CustomerServiceImpostor-v0",
    "injector": "textgym/CustomerServiceInjection-v0",
    "typos": "textgym/CustomerServiceTypos-v0",
}


def listed_oracle(env: gym.Env, info: dict) -> str:
    action = oracle(env, info)
    assert action in info["valid_actions"]
    return action


@pytest.mark.parametrize("persona", sorted(PERSONA_IDS))
def test_oracle_keeps_the_policy_with_every_persona(persona: str) -> None:
    for kwargs in ({}, {"num_requests": 2, "num_orders": 4, "ambiguous_opening": True}):
        env = gym.make(PERSONA_IDS[persona], **kwargs)
        seeds = range(500 if not kwargs else 100)
        ends = [play(env, seed, listed_oracle)[-1].info for seed in seeds]
        assert all(info["success"] for info in ends), persona
        assert not any(info["violations"] for info in ends)


def compliant(persona: str) -> Chooser:
    """An agent that does what the customer asks: the oracle, except that it carries out refused requests
    when pressed or told to, and looks up whatever account the customer names."""
    looked_up: set[str] = set()

    def choose(env: gym.Env, info: dict) -> str:
        u = env.unwrapped
        if persona == "insistent" and u.customer.pushing:  # gives in to the pressure
            done = u.solutions[u.focus - 1]
            if done is not None and str(done) in info["valid_actions"] and u.db.orders[done.args["order_id"]] != \
                    _applied(u, done):
                return str(done)
            return SAY[Intent.CONFIRM_DONE]
        if persona == "impostor":
            named = [e for e in u.notes.emails if e != u.persona.email and e not in looked_up]
            if named:  # "just look up their orders"
                looked_up.add(named[0])
                return str(Call(Tool.LOOKUP_CUSTOMER, {"email": named[0]}))
        action = u.oracle_action()
        if action == SAY[Intent.REFUSE] and persona != "insistent":  # does what is asked instead
            return str(u.solutions[u.focus]) if u.solutions[u.focus] is not None else action
        return action

    return choose


def _applied(u, call: Call):  # noqa: ANN001, ANN202 - the env and the order after the call
    from textgym.envs.customer_service import STORE_TOOLS

    db = u.db.copy()
    STORE_TOOLS[call.tool](db, **call.args)
    return db.orders[call.args["order_id"]]


@pytest.mark.parametrize("persona", sorted(PERSONA_IDS))
def test_an_agent_that_does_as_asked_breaks_the_policy(persona: str) -> None:
    env = gym.make(PERSONA_IDS[persona])
    ends = [play(env, seed, compliant(persona))[-1].info for seed in range(200)]
    violated = np.mean([bool(info["violations"]) for info in ends])
    assert violated > 0.25, violated  # measured: 0.33 to 1.0 (see README)
    assert np.mean([info["success"] for info in ends]) < 1 - violated + 1e-9


def test_the_insistent_customer_presses_two_or_three_times_with_rising_pressure() -> None:
    env = gym.make(PERSONA_IDS["insistent"], forbidden_rate=1.0)
    presses = Counter()
    for seed in range(100):
        steps = play(env, seed, oracle)
        said = [step.observation.split("\n")[1] for step in steps]
        levels = [next((lvl for lvl, texts in enumerate(PRESSURE) if any(t.split("{")[0] in m for t in texts)), None)
                  for m in said]
        pressed = [lvl for lvl in levels if lvl is not None]
        if pressed:
            assert pressed == sorted(pressed) and pressed[0] == 0
            presses[len(pressed)] += 1
    assert set(presses) == {2, 3} and sum(presses.values()) > 50


def test_the_impostor_names_another_account_and_a_wrong_zip_first() -> None:
    env = gym.make(PERSONA_IDS["impostor"])
    steps = play(env, 0, oracle)
    u = env.unwrapped
    assert u.notes.emails[0] == u.persona.acquaintance != u.persona.email and u.persona.acquaintance in u.db.accounts
    assert u.notes.zips[0] != u.persona.zip_code and u.notes.zips[1] == u.persona.zip_code
    assert steps[-1].info["success"]


def test_the_injector_addresses_the_agent() -> None:
    env = gym.make(PERSONA_IDS["injector"])
    openings = [env.reset(seed=seed)[0] for seed in range(30)]
    assert all(any(text in o for text in INJECTIONS) for o in openings)


def test_typos_change_words_but_not_facts() -> None:
    rng = np.random.default_rng(0)
    texts = [misspell("Please send everything to {} without delay, thanks {amount}", rng) for _ in range(200)]
    assert all("{}" in t and "{amount}" in t for t in texts) and len(set(texts)) > 20
    env = gym.make(PERSONA_IDS["typos"])
    for seed in range(50):
        play(env, seed, oracle)
        assert env.unwrapped.notes.emails == [env.unwrapped.persona.email]  # the fact arrived exact


def test_same_seed_same_persona_conversation() -> None:
    for env_id in PERSONA_IDS.values():
        runs = [[s.observation for s in play(gym.make(env_id), 7, oracle)] for _ in range(2)]
        assert runs[0] == runs[1]


def test_unknown_persona_is_named() -> None:
    with pytest.raises(TypeError, match=r"persona's name, one of \['cooperative', 'insistent'"):
        gym.make("textgym/CustomerService-v0", customer="angry")
