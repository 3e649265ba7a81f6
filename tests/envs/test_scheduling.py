"""Scheduling's own properties: a feasible slot exists, the oracle books the best one, parser, rewards."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import numpy as np
import pytest

from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.envs.base import InvalidAction
from textgym.envs.checker import assert_env_sound
from textgym.envs.scheduling import (
    LUNCH,
    TIME_OF_DAY,
    Person,
    ReadCalendar,
    SchedulingEnv,
    SlotAction,
    avoid,
    clock,
)
from textgym.policies.oracle import OraclePolicy
from textgym.policies.random import RandomPolicy

ID = "textgym/Scheduling-v0"
HARD = {"num_people": 8, "days": 5, "duration": 120, "busy_density": 0.9, "preferences": 3}


def slots(env: gym.Env) -> list[tuple[int, int]]:
    inner = env.unwrapped
    return [(day, start) for day in range(len(inner.day_names)) for start in range(inner.num_starts)]


def feasible(env: gym.Env, day: int, start: int) -> bool:
    """Ground truth from each attendee's own ``conflict`` (independent of the env's vectorised table)."""
    end = start + env.unwrapped.length
    return all(p.conflict(day, start, end) is None for p in env.unwrapped.people)


def preferences_met(env: gym.Env, day: int, start: int) -> int:
    end = start + env.unwrapped.length
    return sum(w.accepts(day, start, end) for p in env.unwrapped.people for w in p.preferences)


def best_slot(env: gym.Env) -> tuple[int, int]:
    return max((s for s in slots(env) if feasible(env, *s)), key=lambda s: preferences_met(env, *s))


def oracle_episode(env: gym.Env, seed: int) -> tuple[int, float, dict]:
    _, info = env.reset(seed=seed)
    for steps in range(1, 20):
        _, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
        if terminated or truncated:
            return steps, reward, info
    raise AssertionError("the oracle did not book")


@pytest.mark.parametrize("kwargs", [{}, {"num_people": 5, "days": 5, "preferences": 2}, HARD])
def test_oracle_books_the_best_feasible_slot(kwargs: dict) -> None:
    env = gym.make(ID, **kwargs)
    for seed in range(200 if kwargs != HARD else 40):
        steps, reward, info = oracle_episode(env, seed)
        assert info["success"] and steps == len(env.unwrapped.people) + 1
        assert info["preferences_met"] == info["best_preferences"] == preferences_met(env, *best_slot(env))
        assert reward == pytest.approx(1.0 + 0.1 * info["best_preferences"])


@pytest.mark.parametrize("kwargs", [{}, {"busy_density": 0.0}, HARD, {"duration": 240, "busy_density": 0.7}])
def test_feasible_slots_exist_and_match_ground_truth(kwargs: dict) -> None:
    env = gym.make(ID, **kwargs)
    for seed in range(30):
        _, info = env.reset(seed=seed)
        truth = sum(feasible(env, d, s) for d, s in slots(env))
        assert info["feasible_slots"] == truth >= 1


def test_oracle_and_random_rates() -> None:
    """Measured: the oracle books a feasible slot 200/200 times; random valid actions ~7% of the time."""
    make = partial(gym.make, ID)
    oracle = evaluate(vector_env(make, 8), OraclePolicy(), 200, seed=0).metrics()
    assert oracle["success_rate"] == 1.0 and oracle["mean_length"] == 4.0
    random = evaluate(vector_env(make, 8), RandomPolicy(seed=0), 200, seed=0).metrics()
    assert random["success_rate"] < 0.2


@pytest.mark.parametrize(
    ("text", "action"),
    [("read_calendar Bob", ReadCalendar(1)), ("read_calendar(bob)", ReadCalendar(1)),
     ("READ_CALENDAR ( Carol )", ReadCalendar(2)), ("propose Mon 09:00", SlotAction(False, 0, 2)),
     ("propose monday 9:00", SlotAction(False, 0, 2)), ("  book   TUE 13:30 ", SlotAction(True, 1, 11)),
     ("book Wednesday 08:00", SlotAction(True, 2, 0)), ("propose wed 17:00", SlotAction(False, 2, 18))],
)
def test_parser_accepts(text: str, action: ReadCalendar | SlotAction) -> None:
    assert SchedulingEnv().parse_action(text) == action


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "expected 'read_calendar"), ("schedule Mon 09:00", "expected"), ("propose Mon", "expected"),
     ("propose Mon 0900", "expected"), ("read_calendar", "expected"), ("read calendar Bob", "expected"),
     ("read_calendar Zed", "no attendee 'zed'; the attendees are Alice, Bob, Carol"),
     ("read_calendar Dave", "no attendee"),
     ("propose Thu 09:00", "'thu' is not a meeting day; use one of Mon"),
     ("propose Mo 09:00", "not a meeting day"), ("book Mon 09:15", "half hour"),
     ("book Mon 17:30", "between 08:00 and 17:00"), ("book Mon 7:30", "between 08:00 and 17:00"),
     ("propose Mon 25:00", "between")],
)
def test_parser_rejects_with_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAction, match=reason):
        SchedulingEnv().parse_action(text)


def test_reading_calendars() -> None:
    env = gym.make(ID)
    observation, info = env.reset(seed=0)
    assert "Calendars not read yet: Alice, Bob, Carol." in observation and "works" not in observation
    observation, reward, terminated, _, info = env.step("read_calendar(Bob)")
    assert observation.startswith("You read Bob's calendar.") and "\nBob works " in observation
    assert "Calendars not read yet: Alice, Carol." in observation and not terminated and reward == 0.0
    assert "read_calendar Bob" not in info["valid_actions"] and "read_calendar Alice" in info["valid_actions"]
    observation, *_, info = env.step("read_calendar bob")  # allowed, but wasted
    assert observation.startswith("You already read Bob's calendar.")
    assert "invalid_action" not in info["reward_terms"]
    person = env.unwrapped.people[1]
    for day in env.unwrapped.day_names:
        assert f"  {day}: " in observation
    assert f"Bob works {clock(person.work_start)}-{clock(person.work_end)}" in observation


def test_proposals_give_reasons_and_do_not_end_the_episode() -> None:
    env = gym.make(ID)
    for seed in range(20):
        env.reset(seed=seed)
        day, start = best_slot(env)
        day_name = env.unwrapped.day_names[day]
        observation, _, terminated, _, _ = env.step(f"propose {day_name} {clock(start)}")
        assert not terminated and "declines" not in observation.splitlines()[0]
        assert observation.count(" accepts") == 3
        day, start = next((d, s) for d, s in slots(env) if not feasible(env, d, s))
        observation, _, terminated, _, _ = env.step(f"propose {env.unwrapped.day_names[day]} {clock(start)}")
        answer = observation.splitlines()[0]
        assert not terminated
        assert "declines (busy at" in answer or "declines (outside working hours" in answer
        end = start + env.unwrapped.length
        for person in env.unwrapped.people:
            conflict = person.conflict(day, start, end)
            expected = f"{person.name} declines ({conflict})" if conflict else f"{person.name} accepts"
            assert expected in answer


def test_failed_booking_pays_failure() -> None:
    env = gym.make(ID, reward={"failure": -1.0})
    env.reset(seed=0)
    day, start = next((d, s) for d, s in slots(env) if not feasible(env, d, s))
    observation, reward, terminated, _, info = env.step(f"book {env.unwrapped.day_names[day]} {clock(start)}")
    assert terminated and not info["success"] and reward == -1.0 and info["reward_terms"] == {
        "step": 0.0, "failure": -1.0}
    assert "cannot come" in observation and info["preferences_met"] == 0 and info["valid_actions"] == []


def test_preference_reward() -> None:
    env = gym.make(ID, reward={"preference": 0.5})
    paid = []
    for seed in range(20):
        _, reward, info = oracle_episode(env, seed)
        assert info["reward_terms"].get("preference", 0.0) == 0.5 * info["best_preferences"]
        paid.append(info["best_preferences"])
    assert max(paid) > 0
    env = gym.make(ID, preferences=0)
    _, reward, info = oracle_episode(env, 0)
    assert reward == 1.0 and "preference" not in info["reward_terms"] and info["best_preferences"] == 0


def test_difficulty_knobs() -> None:
    _, info = gym.make(ID, num_people=6, days=5, duration=90).reset(seed=0)
    actions = info["valid_actions"]
    assert sum(a.startswith("read_calendar") for a in actions) == 6
    assert {a.split()[1] for a in actions if a.startswith("book")} == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    assert sum(a.startswith("book") for a in actions) == 5 * (20 - 3 + 1)
    task = "a 90-minute meeting with Alice, Bob, Carol, Dave, Erin and Frank on Mon, Tue, Wed, Thu or Fri"
    assert task in info["instructions"]
    observation, _ = gym.make(ID, days=1).reset(seed=0)
    assert " on Mon, starting" in observation

    def mean_feasible(density: float) -> float:
        env = gym.make(ID, busy_density=density)
        return float(np.mean([env.reset(seed=s)[1]["feasible_slots"] for s in range(30)]))

    assert mean_feasible(0.1) > mean_feasible(0.3) > mean_feasible(0.6)
    env = gym.make(ID, preferences=3, days=5)
    env.reset(seed=0)
    assert all(len(p.preferences) == 3 for p in env.unwrapped.people)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"num_people": 1}, "num_people=1"), ({"num_people": 9}, "num_people=9"), ({"days": 6}, "days=6"),
     ({"days": "3"}, "days='3'"), ({"duration": 45}, "duration=45"), ({"duration": 270}, "duration=270"),
     ({"busy_density": 1.0}, "busy_density=1.0"), ({"busy_density": -0.1}, "busy_density=-0.1"),
     ({"preferences": 4}, "preferences=4"), ({"preferences": 3, "days": 1}, "preferences=3")],
)
def test_bad_knobs_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gym.make(ID, **kwargs)


def test_observations_stay_bounded() -> None:
    """The longest calendars (every other slot busy, all day, the longest preferences) still fit."""
    env = gym.make(ID, num_people=8, days=5, duration=30, preferences=3)
    env.reset(seed=0)
    busy = np.zeros((5, 20), dtype=bool)
    busy[:, 1::2] = True
    wishes = (TIME_OF_DAY[1], LUNCH[0], avoid(2))
    inner = env.unwrapped
    inner.people = [Person(name, 0, 20, busy.copy(), wishes) for name in inner.names]
    inner._calendars = [p.calendar(inner.day_names) for p in inner.people]
    for name in inner.names:
        env.step(f"read_calendar {name}")
    observation, *_ = env.step("propose Wed 08:00")  # everyone accepts, each naming two unmet wishes
    assert observation.count("accepts but") == 8 and observation.count("busy 08:30-09:00, ") == 40
    assert 7000 < len(observation) <= inner.max_observation_length


def test_fixed_seed_transcript() -> None:
    """The same seed gives the same calendars and booking; another seed gives others."""
    def transcript(seed: int) -> list[str]:
        env = gym.make(ID)
        observation, _ = env.reset(seed=seed)
        record = [observation]
        while not record[-1].startswith("You booked"):
            record.append(env.step(env.unwrapped.oracle_action())[0])
        return record

    first = transcript(5)
    assert first == transcript(5) != transcript(6)
    reads = [line.split("'")[0] for line in first[1:-1]]
    assert reads == ["You read Alice", "You read Bob", "You read Carol"]
    assert "Everyone can attend" in first[-1]


def test_env_is_sound() -> None:
    """textgym's checker, including pickling and deep copies."""
    assert_env_sound(ID)
