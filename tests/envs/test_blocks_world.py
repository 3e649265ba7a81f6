"""BlocksWorld's own properties: the planner is optimal, the oracle follows it, parser, rewards, knobs,
ground truth."""

from __future__ import annotations

from collections import Counter, deque
from functools import partial

import gymnasium as gym
import numpy as np
import pytest

from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.envs.base import InvalidAction
from textgym.envs.checker import assert_env_sound, check_tabular_mdp
from textgym.envs.blocks_world import (
    NAMES,
    TABLE,
    BlocksWorldEnv,
    Move,
    State,
    configurations,
    legal_moves,
    parse_stacks,
    shortest_plan,
    stacks_of,
    state_of,
    well_placed,
)
from textgym.envs.mdp import solve, start_value
from textgym.policies.oracle import OraclePolicy
from textgym.policies.random import RandomPolicy

ID = "textgym/BlocksWorld-v0"
SUSSMAN = {"start": [["A", "C"], ["B"]], "goal": [["C", "B", "A"]]}
"""The Sussman anomaly: C on A, B alone; the goal is A on B on C. Three moves are optimal."""


def bfs_distances(goal: State) -> dict[State, int]:
    """Plain breadth-first distances to ``goal`` over the whole state space (a reference for the planner)."""
    distance, queue = {goal: 0}, deque([goal])
    while queue:
        state = queue.popleft()
        for block, dest in legal_moves(state):
            child = state[:block] + (dest,) + state[block + 1 :]
            if child not in distance:
                distance[child] = distance[state] + 1
                queue.append(child)
    return distance


def names(state: State) -> list[list[str]]:
    return [[NAMES[block] for block in stack] for stack in stacks_of(state)]


def apply(state: State, action: str) -> State:
    block, dest = BlocksWorldEnv(num_blocks=len(state)).parse_action(action)
    assert block not in state and (dest == TABLE or dest not in state), f"{action} is illegal here"
    return state[:block] + (dest,) + state[block + 1 :]


def test_sussman_anomaly() -> None:
    assert shortest_plan(SUSSMAN["start"], SUSSMAN["goal"]) == [
        "move C to the table", "move B onto C", "move A onto B",
    ]
    assert shortest_plan([["A", "B"]], [["A", "B"]]) == []


@pytest.mark.parametrize("num_blocks", [3, 4, 5])
def test_shortest_plan_is_optimal_and_correct(num_blocks: int) -> None:
    """Against plain BFS: every plan reaches the goal, in exactly the BFS distance."""
    rng = np.random.default_rng(num_blocks)
    goal = state_of([list(rng.permutation(num_blocks))])
    distance = bfs_distances(goal)
    assert len(distance) == {3: 13, 4: 73, 5: 501}[num_blocks]  # every configuration is reachable
    for start in [s for s in distance if s != goal][:: max(1, len(distance) // 60)]:
        plan = shortest_plan(names(start), names(goal))
        assert len(plan) == distance[start]
        state = start
        for action in plan:
            state = apply(state, action)
        assert state == goal


def test_shortest_plan_rejects_bad_stacks() -> None:
    with pytest.raises(ValueError, match="A, B, C once each"):
        shortest_plan([["A", "B"], ["C"]], [["A", "B", "B"]])
    with pytest.raises(ValueError, match="once each"):
        shortest_plan([["A", "C"]], [["C", "A"]])


@pytest.mark.parametrize("num_blocks", [3, 5, 7])
def test_oracle_plans_are_optimal(num_blocks: int) -> None:
    """The oracle always succeeds, in exactly ``info["optimal_steps"]`` moves."""
    env = gym.make(ID, num_blocks=num_blocks)
    for seed in range(200 if num_blocks < 7 else 50):
        _, info = env.reset(seed=seed)
        optimal = info["optimal_steps"]
        assert optimal >= 1
        for steps in range(1, optimal + 1):
            _, reward, terminated, _, info = env.step(env.unwrapped.oracle_action())
            assert info["optimal_steps"] == optimal
        assert terminated and info["success"] and reward == 1.0 and steps == optimal


def test_oracle_replans_after_a_detour() -> None:
    env = gym.make(ID, num_blocks=5)
    for seed in range(30):
        _, info = env.reset(seed=seed)
        detours = [a for a in info["valid_actions"] if a != env.unwrapped.oracle_action()]
        if not detours:  # a single tower: its top block to the table is the only move
            continue
        env.step(detours[0])
        remaining = len(shortest_plan(names(env.unwrapped.state), names(env.unwrapped.goal)))
        for _ in range(remaining):
            *_, terminated, _, info = env.step(env.unwrapped.oracle_action())
        assert terminated and info["success"]


def test_oracle_and_random_rates() -> None:
    """Measured: the oracle solves 200/200; random valid moves solve ~30% of 4-block, ~0% of 6-block tasks."""
    oracle = evaluate(vector_env(partial(gym.make, ID), 8), OraclePolicy(), 200, seed=0).metrics()
    assert oracle["success_rate"] == 1.0 and oracle["invalid_action_rate"] == 0.0
    random4 = evaluate(vector_env(partial(gym.make, ID), 8), RandomPolicy(seed=0), 200, seed=0).metrics()
    assert 0.15 < random4["success_rate"] < 0.45
    random6 = evaluate(vector_env(partial(gym.make, ID, num_blocks=6), 8), RandomPolicy(seed=0), 200, seed=0)
    assert random6.metrics()["success_rate"] < 0.05


def test_start_states_are_uniform_and_goals_differ() -> None:
    """3 blocks have 13 configurations; 1300 seeded starts hit each about 100 times."""
    env = gym.make(ID, num_blocks=3)
    counts: Counter[State] = Counter()
    for seed in range(1300):
        env.reset(seed=seed)
        assert env.unwrapped.goal != env.unwrapped.state
        counts[env.unwrapped.state] += 1
    assert len(counts) == 13
    assert 60 < min(counts.values()) and max(counts.values()) < 140


@pytest.mark.parametrize(
    ("text", "move"),
    [("move A onto B", Move(0, 1)), ("  MOVE a   ONTO b\n", Move(0, 1)), ("move d on c", Move(3, 2)),
     ("move C to the table", Move(2, TABLE)), ("Move c to table", Move(2, TABLE)),
     ("move B onto the table", Move(1, TABLE)), ("move b on table", Move(1, TABLE))],
)
def test_parser_accepts(text: str, move: Move) -> None:
    assert BlocksWorldEnv(num_blocks=4).parse_action(text) == move


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "expected 'move"), ("move A", "expected"), ("move A onto", "expected"), ("put A on B", "expected"),
     ("move A onto the B", "expected"), ("move A to B", "expected"), ("moveA onto B", "expected"),
     ("move A onto A", "onto itself"), ("move E onto A", "no block 'E'; the blocks are A, B, C, D"),
     ("move A onto AB", "no block 'AB'"), ("move 1 to the table", "no block '1'")],
)
def test_parser_rejects_with_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAction, match=reason):
        BlocksWorldEnv(num_blocks=4).parse_action(text)


@pytest.mark.parametrize(
    ("action", "reason"),
    [("move A to the table", "A is not clear: C is on top of it"),
     ("move B onto A", "cannot move B onto A: C is on top of it"),
     ("move B to the table", "B is already on the table"),
     ("move C onto A", "C is already on A")],
)
def test_inadmissible_moves_change_nothing(action: str, reason: str) -> None:
    env = gym.make(ID, num_blocks=3)
    before, _ = env.reset(seed=0, options=SUSSMAN)
    observation, reward, terminated, _, info = env.step(action)
    assert observation.startswith("Invalid action") and reason in observation
    assert observation.endswith(before) and not terminated and reward == -0.1


def test_progress_rewards_well_placed_blocks() -> None:
    env = gym.make(ID, num_blocks=3, reward={"progress": 0.5})
    observation, info = env.reset(seed=0, options=SUSSMAN)
    assert "Blocks in their final position: 0 of 3." in observation and info["well_placed"] == 0
    _, reward, *_, info = env.step("move C to the table")
    assert info["reward_terms"]["progress"] == 0.5 and reward == 0.5 and info["well_placed"] == 1
    _, reward, *_, info = env.step("move C onto B")  # takes the well-placed C away
    assert info["reward_terms"]["progress"] == -0.5
    _, reward, *_, info = env.step("move A onto C")  # A is not placed yet: no progress term
    assert "progress" not in info["reward_terms"] and reward == 0.0
    env.reset(seed=0, options=SUSSMAN)
    rewards = [env.step(a)[1] for a in shortest_plan(SUSSMAN["start"], SUSSMAN["goal"])]
    assert rewards == [0.5, 0.5, 1.5]  # progress pays n in total along a direct plan, plus success


def test_default_rewards_pay_only_success() -> None:
    env = gym.make(ID, num_blocks=3)
    env.reset(seed=0, options=SUSSMAN)
    rewards = [env.step(a)[1] for a in shortest_plan(SUSSMAN["start"], SUSSMAN["goal"])]
    assert rewards == [0.0, 0.0, 1.0]


def test_reset_options_set_start_or_goal() -> None:
    env = gym.make(ID, num_blocks=3)
    observation, info = env.reset(seed=0, options=SUSSMAN)
    assert "Stacks now (bottom to top): [A C] [B]\nGoal stacks (bottom to top): [C B A]" in observation
    assert info["optimal_steps"] == 3
    for seed in range(20):
        env.reset(seed=seed, options={"goal": [["A"], ["B"], ["C"]]})
        assert env.unwrapped.goal == (TABLE,) * 3 != env.unwrapped.state
    with pytest.raises(ValueError, match="same stacks"):
        env.reset(options={"start": [["A", "B", "C"]], "goal": [["A", "B", "C"]]})
    with pytest.raises(ValueError, match="A, B, C once each"):
        env.reset(options={"start": [["A", "B"]]})


def test_num_blocks_knob() -> None:
    for num_blocks in (2, 6, 10):
        env = gym.make(ID, num_blocks=num_blocks)
        observation, info = env.reset(seed=1)
        letters = {c for line in observation.splitlines()[:2] for c in line.split(": ")[1] if c.isalpha()}
        assert letters == set(NAMES[:num_blocks])
        assert NAMES[num_blocks - 1] in info["instructions"] and NAMES[num_blocks] not in info["instructions"]
    plans = {n: np.mean([gym.make(ID, num_blocks=n).reset(seed=s)[1]["optimal_steps"] for s in range(30)])
             for n in (3, 7)}
    assert plans[7] > plans[3] + 2
    for bad in (1, 11, 4.0, "4"):
        with pytest.raises(ValueError, match=f"num_blocks={bad!r}"):
            gym.make(ID, num_blocks=bad)


def test_parse_stacks_round_trip() -> None:
    state = parse_stacks([["B", "A"], ["D"], ["C", "E"]], 5)
    assert names(state) == [["B", "A"], ["C", "E"], ["D"]]


def test_fixed_seed_transcript() -> None:
    """The same seed replays the same oracle transcript; it ends on the goal with every block placed."""
    def transcript(seed: int) -> list[str]:
        env = gym.make(ID, num_blocks=5)
        observation, _ = env.reset(seed=seed)
        record = [observation]
        while not record[-1].startswith("You moved") or "match the goal" not in record[-1]:
            record.append(env.step(env.unwrapped.oracle_action())[0])
        return record

    first = transcript(7)
    assert first == transcript(7) != transcript(8)
    lines = first[-1].splitlines()
    assert lines[1].split(": ")[1] == lines[2].split(": ")[1]  # the stacks now equal the goal stacks
    assert lines[3] == "Blocks in their final position: 5 of 5 (A, B, C, D, E)."


def test_env_is_sound() -> None:
    """textgym's checker, including pickling and deep copies."""
    assert_env_sound(ID)


# ---- ground truth: the exact MDP over (configuration, goal) pairs ------------------------------------
def test_tabular_mdp_matches_sampling() -> None:
    check_tabular_mdp(ID, seed=1)


def test_state_is_the_configuration_then_the_goal() -> None:
    env = gym.make(ID, num_blocks=3)
    _, info = env.reset(seed=0, options=SUSSMAN)
    assert info["state"] == parse_stacks(SUSSMAN["start"], 3) + parse_stacks(SUSSMAN["goal"], 3)
    mdp = env.unwrapped.tabular_mdp()
    assert len(mdp.states) == 13 * 13 and mdp.start[mdp.index(info["state"])] == pytest.approx(1 / (13 * 12))


@pytest.mark.parametrize("num_blocks", [2, 3])
def test_optimal_values_are_the_shortest_plan_lengths(num_blocks: int) -> None:
    """With a step cost, V*(start, goal) = success + step * (shortest plan length), in every state."""
    mdp = BlocksWorldEnv(num_blocks=num_blocks, reward={"step": -0.1}).tabular_mdp()
    v = solve(mdp, horizon=50).v
    distances = {goal: bfs_distances(goal) for goal in configurations(num_blocks)}
    for i, pair in enumerate(mdp.states):
        state, goal = pair[:num_blocks], pair[num_blocks:]
        expected = 1.0 - 0.1 * distances[goal][state] if state != goal else 0.0  # the goal is terminal
        assert v[i] == pytest.approx(expected, abs=1e-12)


def test_optimal_return_prices_the_mean_plan_length() -> None:
    """2 blocks have 3 configurations; of the 6 (start, goal) pairs, 4 are 1 move apart and 2 are 2 moves."""
    two = GroundTruth.of(gym.make(ID, num_blocks=2, reward={"step": -0.1}))
    assert two.optimal_return == pytest.approx(1.0 - 0.1 * 8 / 6, abs=1e-12)
    every = configurations(4)
    mean_plan = np.mean([bfs_distances(goal)[state] for goal in every for state in every if state != goal])
    four = BlocksWorldEnv(reward={"step": -0.01}).tabular_mdp()
    assert start_value(four, solve(four, horizon=50)) == pytest.approx(1.0 - 0.01 * mean_plan, abs=1e-12)


def test_progress_shaping_adds_the_blocks_left_to_place() -> None:
    """The progress term is potential-based: every way to the goal collects n - (well placed at the start)."""
    mdp = BlocksWorldEnv(num_blocks=3, reward={"progress": 0.1}).tabular_mdp()
    v = solve(mdp, horizon=50).v
    for i, pair in enumerate(mdp.states):
        if mdp.actions[i]:
            assert v[i] == pytest.approx(1.0 + 0.1 * (3 - sum(well_placed(pair[:3], pair[3:]))), abs=1e-12)


def test_oracle_has_no_regret_and_random_has_some() -> None:
    env_fn = partial(gym.make, ID, reward={"step": -0.01})
    optimum = GroundTruth.of(env_fn()).optimal_return
    oracle = evaluate(vector_env(env_fn, 8), OraclePolicy(), 200, seed=0, optimal_return=optimum).metrics()
    random = evaluate(vector_env(env_fn, 8), RandomPolicy(seed=1234), 200, seed=0, optimal_return=optimum)
    assert abs(oracle["regret"]) < 0.01  # only the spread of plan lengths over 200 episodes
    assert random.metrics()["regret"] > 0.5


def test_tabular_mdp_names_its_block_limit() -> None:
    with pytest.raises(ValueError, match="num_blocks <= 4, got 5"):
        BlocksWorldEnv(num_blocks=5).tabular_mdp()
