"""The finite MDP behind a text env, as ``env.unwrapped.tabular_mdp()`` exports it.

Envs small enough to enumerate describe each transition once, as a :class:`Branch`; :func:`enumerate_mdp`
walks the reachable states breadth-first and weighs every branch with the env's reward spec, so swept
reward weights change the ground truth too. Solvers live in :mod:`textgym.algorithms.planning`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import numpy as np

from textgym.envs.base import RewardSpec


class Branch(NamedTuple):
    """One possible result of taking an action in a state."""

    prob: float
    next_state: Hashable
    terms: Mapping[str, float]
    """Reward-term counts, as ``Outcome.terms`` (the ``step`` term is added for every step)."""
    terminated: bool
    success: bool = False


class Transition(NamedTuple):
    """A branch with the next state as an index and the reward weighed by the env's spec."""

    prob: float
    next_index: int
    reward: float
    terminated: bool
    success: bool


@dataclass
class TabularMDP:
    """States, their texts, their valid actions, transitions, and the start distribution.

    ``transitions[i][j]`` lists the outcomes of ``actions[i][j]`` in ``states[i]``; a state with no
    actions is terminal (absorbing, worth 0). Invalid actions are not part of the MDP.
    """

    states: list[Hashable]
    """State ids, as the env reports them in ``info["state"]``."""
    texts: list[str]
    """The text each state renders to (``env.describe()``)."""
    actions: list[list[str]]
    """The valid action strings of each state."""
    transitions: list[list[list[Transition]]]
    start: np.ndarray
    """Probability of starting in each state."""

    def index(self, state: Hashable) -> int:
        """The index of ``state`` in :attr:`states`."""
        return self._index[state]

    def __contains__(self, state: Hashable) -> bool:
        return state in self._index

    def __post_init__(self) -> None:
        self._index = {s: i for i, s in enumerate(self.states)}
        for i, per_action in enumerate(self.transitions):
            for j, outcomes in enumerate(per_action):
                total = sum(t.prob for t in outcomes)
                if abs(total - 1.0) > 1e-9:
                    raise ValueError(f"state {self.states[i]!r}, action {self.actions[i][j]!r}: probabilities sum to {total}")


def enumerate_mdp(
    start: Mapping[Hashable, float],
    actions: Callable[[Hashable], Sequence[str]],
    branches: Callable[[Hashable, str], Sequence[Branch]],
    text: Callable[[Hashable], str],
    reward: RewardSpec,
    max_states: int = 200_000,
) -> TabularMDP:
    """Breadth-first enumeration of the states reachable from ``start``.

    ``actions(s)`` lists the valid actions of a non-terminal state, ``branches(s, a)`` their outcomes and
    ``text(s)`` the state's text; terminal states are those reached by a terminating branch.
    """
    states = list(start)
    index = {s: i for i, s in enumerate(states)}
    terminal: set[Hashable] = set()
    table: list[list[list[Transition]]] = []
    action_lists: list[list[str]] = []
    i = 0
    while i < len(states):
        state = states[i]
        valid = [] if state in terminal else list(actions(state))
        per_action = []
        for action in valid:
            outcomes = []
            for b in branches(state, action):
                if b.next_state not in index:
                    if len(states) >= max_states:
                        raise ValueError(f"more than {max_states} reachable states: too large to enumerate")
                    index[b.next_state] = len(states)
                    states.append(b.next_state)
                if b.terminated:
                    terminal.add(b.next_state)
                value = sum(reward.weigh({"step": 1, **b.terms}).values())
                outcomes.append(Transition(b.prob, index[b.next_state], value, b.terminated, b.success))
            per_action.append(outcomes)
        action_lists.append(valid)
        table.append(per_action)
        i += 1
    start_probs = np.array([start.get(s, 0.0) for s in states])
    return TabularMDP(states, [text(s) for s in states], action_lists, table, start_probs)


class Objective(str, Enum):
    """What a solver maximises."""

    reward = "reward"
    """The env's reward, as its reward spec weighs it."""
    success = "success"
    """The probability of ending the episode with the task accomplished."""


@dataclass
class Solution:
    """Values of a solved MDP, indexed like ``mdp.states`` (and ``mdp.actions[i]`` for ``q[i]``)."""

    v: np.ndarray
    q: list[np.ndarray]
    policy: list[int]
    """Index into ``mdp.actions[i]`` of a best action (-1 for terminal states)."""


class _Flat(NamedTuple):
    """The MDP as flat arrays over state-action pairs and their outcomes, for vectorised backups."""

    pair_state: np.ndarray
    first_pair: np.ndarray
    outcome_pair: np.ndarray
    prob: np.ndarray
    next_index: np.ndarray
    reward: np.ndarray
    continues: np.ndarray
    success: np.ndarray


def _flat(mdp: TabularMDP) -> _Flat:
    pair_state, first_pair, rows = [], [], []
    for i, per_action in enumerate(mdp.transitions):
        first_pair.append(len(pair_state))
        for outcomes in per_action:
            rows += [(len(pair_state), *t) for t in outcomes]
            pair_state.append(i)
    pair, prob, nxt, reward, terminated, success = (np.array(c) for c in zip(*rows)) if rows else [np.zeros(0)] * 6
    return _Flat(np.array(pair_state, dtype=int), np.array(first_pair, dtype=int), pair.astype(int), prob.astype(float),
                 nxt.astype(int), reward.astype(float), ~terminated.astype(bool), success.astype(float))


def _backup(mdp: TabularMDP, flat: _Flat, v: np.ndarray, gamma: float, objective: Objective) -> np.ndarray:
    """Q over all pairs given next-state values ``v``."""
    gain = flat.success if objective is Objective.success else flat.reward
    target = gain + gamma * flat.continues * v[flat.next_index]
    return np.bincount(flat.outcome_pair, weights=flat.prob * target, minlength=len(flat.pair_state))


def _greedy(mdp: TabularMDP, flat: _Flat, q: np.ndarray) -> tuple[np.ndarray, list[int]]:
    v = np.zeros(len(mdp.states))
    policy = [-1] * len(mdp.states)
    for i, actions in enumerate(mdp.actions):
        if actions:
            start = flat.first_pair[i]
            best = int(np.argmax(q[start : start + len(actions)]))
            v[i], policy[i] = q[start + best], best
    return v, policy


def _policy_q(mdp: TabularMDP, flat: _Flat, q: np.ndarray, policy: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([float(np.dot(policy[i], q[flat.first_pair[i] : flat.first_pair[i] + len(a)])) if a else 0.0
                     for i, a in enumerate(mdp.actions)])


def solve(
    mdp: TabularMDP,
    gamma: float = 1.0,
    horizon: int | None = None,
    objective: Objective = Objective.reward,
    policy: Sequence[np.ndarray] | None = None,
    tolerance: float = 1e-12,
    max_iterations: int = 1_000_000,
) -> Solution:
    """Optimal values (or those of a fixed ``policy``) by value iteration.

    ``horizon=None`` solves the infinite-horizon discounted problem (needs ``gamma < 1`` or a proper
    MDP); ``horizon=H`` gives the values with ``H`` steps left, which honours a step limit (the values a
    time-limited episode can earn from its start). ``policy[i]`` is a distribution over
    ``mdp.actions[i]``; when given, the values are that policy's (exact policy evaluation). Without a
    horizon, values that have not converged after ``max_iterations`` backups raise ``ValueError``.
    """
    flat = _flat(mdp)
    v = np.zeros(len(mdp.states))
    steps = 0
    while True:
        q = _backup(mdp, flat, v, gamma, objective)
        new_v = _policy_q(mdp, flat, q, policy) if policy is not None else _greedy(mdp, flat, q)[0]
        steps += 1
        done = steps >= horizon if horizon is not None else np.abs(new_v - v).max(initial=0.0) < tolerance
        v = new_v
        if done:
            break
        if steps >= max_iterations:
            raise ValueError(
                f"values did not converge in {max_iterations} backups: with gamma={gamma} some policy collects "
                "reward forever; pass horizon=<step limit> or gamma < 1"
            )
    _, greedy = _greedy(mdp, flat, q)
    per_state = [q[flat.first_pair[i] : flat.first_pair[i] + len(a)] for i, a in enumerate(mdp.actions)]
    return Solution(v, per_state, greedy)


def start_value(mdp: TabularMDP, solution: Solution) -> float:
    """The expected value of the start state under ``solution``."""
    return float(np.dot(mdp.start, solution.v))


def policy_table(mdp: TabularMDP, choose: Callable[[int], str]) -> list[np.ndarray]:
    """A deterministic policy as per-state distributions; ``choose(i)`` names the action taken in state ``i``."""
    return [np.array([a == choose(i) for a in actions], dtype=float) if actions else np.zeros(0)
            for i, actions in enumerate(mdp.actions)]
