"""The one evaluation path: training's periodic evals, ``textgym benchmark`` and the tests all use it."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from math import comb
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from textgym.policies.base import Policy

EVAL_SEED_OFFSET = 1_000_000
"""Evaluation reset seeds start here, far from training seeds, so evaluations play fresh episodes."""


def vector_env(env_fn: Callable[[], gym.Env], num_envs: int) -> SyncVectorEnv:
    """``num_envs`` copies stepped together; a finished episode resets in the same step."""
    return SyncVectorEnv([env_fn] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


def slot_info(infos: Mapping[str, Any], i: int) -> dict[str, Any]:
    """The ``info`` dict of slot ``i`` out of a vector env's batched infos."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_") or not infos.get(f"_{key}", np.ones(i + 1, bool))[i]:
            continue
        out[key] = slot_info(value, i) if isinstance(value, Mapping) else value[i]
    return out


@dataclass
class Step:
    """One turn of a recorded episode (``evaluate(..., record=True)``)."""

    observation: str
    info: dict[str, Any]
    """The info that came with the observation (``valid_actions``; ``instructions`` at the episode's start)."""
    action: str
    reward: float
    terminated: bool
    truncated: bool
    next_info: dict[str, Any]
    """The step's own info (``reward_terms``, ``success``, ...)."""
    expert_action: str | None = None
    """What the ``expert`` of :func:`evaluate_tasks` would have done here (None without one)."""


@dataclass
class Episode:
    """One finished episode, as the evaluation records it."""

    reward: float
    length: int
    success: bool
    invalid_actions: int
    seed: int | None = None
    """The reset seed that started it, which fixes its task; None when the vector env's autoreset drew it."""
    violations: tuple[str, ...] | None = None
    """The env's policy rules the agent broke, in order (``info["violations"]``); None if not reported."""
    steps: list[Step] | None = None
    """Its turns, when the evaluation records them (``record=True``)."""


def pass_hat_k(trials: int, successes: int, k: int) -> float:
    """tau-bench's pass^k of one task: the chance that ``k`` of its runs, drawn without replacement, all
    succeed.

    ``C(successes, k) / C(trials, k)`` is the unbiased estimate of ``p**k`` (``p`` the task's success
    probability) from ``successes`` out of ``trials`` runs.
    """
    if not 1 <= k <= trials:
        raise ValueError(f"pass^{k} needs 1 <= k <= trials ({trials}): run each task at least k times")
    return comb(successes, k) / comb(trials, k)


class TaskTable:
    """An evaluation grouped by task (reset seed): per-task sums from which every metric is a ratio.

    Episodes without a seed count as tasks of their own. :meth:`estimates` computes the metrics on a
    selection of tasks, so the point estimate and bootstrap resamples share one definition.
    """

    def __init__(self, episodes: Sequence[Episode]) -> None:
        groups: dict[tuple[str, int], list[Episode]] = {}
        for j, episode in enumerate(episodes):
            task = ("episode", j) if episode.seed is None else ("seed", episode.seed)
            groups.setdefault(task, []).append(episode)
        tasks = list(groups.values())

        def total(value: Callable[[Episode], float]) -> np.ndarray:
            return np.array([sum(value(e) for e in task) for task in tasks], dtype=float)

        self.trials = total(lambda e: 1)
        self.successes = total(lambda e: e.success)
        self.returns = total(lambda e: e.reward)
        self.lengths = total(lambda e: e.length)
        self.invalid = total(lambda e: e.invalid_actions)
        reported = bool(episodes) and all(e.violations is not None for e in episodes)
        self.violated = total(lambda e: bool(e.violations)) if reported else None
        """Episodes with at least one violation, per task; None when the env does not report violations."""
        self.min_trials = int(self.trials.min()) if tasks else 0

    def __len__(self) -> int:
        return len(self.trials)

    def pass_ks(self, max_k: int) -> range:
        """The k of pass^k: 1 .. min(max_k, fewest runs of a task), when every task ran at least twice."""
        return range(1, min(max_k, self.min_trials) + 1) if self.min_trials >= 2 else range(0)

    def estimates(
        self, tasks: np.ndarray, optimal_return: float | None = None, max_k: int = 4
    ) -> dict[str, np.ndarray]:
        """The metrics over the tasks indexed by ``tasks`` (shape ``(..., n)``: one row per selection).

        Success rate, mean return and length per episode, the share of steps that were invalid
        actions; where known, the share of episodes that broke the env's policy and the regret
        ``V*(start) - mean return``; pass^k (the mean over tasks of :func:`pass_hat_k`) for :meth:`pass_ks`.
        """
        n = self.trials[tasks].sum(-1)
        out = {
            "success_rate": self.successes[tasks].sum(-1) / n,
            "mean_return": self.returns[tasks].sum(-1) / n,
            "mean_length": self.lengths[tasks].sum(-1) / n,
            "invalid_action_rate": self.invalid[tasks].sum(-1) / np.maximum(self.lengths[tasks].sum(-1), 1),
        }
        if self.violated is not None:
            out["violation_rate"] = self.violated[tasks].sum(-1) / n
        if optimal_return is not None:
            out["regret"] = optimal_return - out["mean_return"]
        for k in self.pass_ks(max_k):
            per_task = np.array([pass_hat_k(int(t), int(c), k) for t, c in zip(self.trials, self.successes)])
            out[f"pass^{k}"] = per_task[tasks].mean(-1)
        return out


@dataclass
class EvalResult:
    """Per-episode records and the metrics computed from them."""

    episodes: list[Episode] = field(default_factory=list)
    optimal_return: float | None = None
    """``V*(start)`` within the step limit, on envs with exact ground truth."""

    def metrics(self, max_k: int = 4) -> dict[str, float]:
        """The episode count and :meth:`TaskTable.estimates` over every task (pass^k up to ``max_k``)."""
        table = TaskTable(self.episodes)
        every_task = np.arange(len(table))
        estimates = table.estimates(every_task, self.optimal_return, max_k)
        return {"episodes": len(self.episodes), **{name: float(value) for name, value in estimates.items()}}

    def violations_by_rule(self) -> dict[str, float] | None:
        """Per rule of the env's policy, the share of episodes that broke it at least once, most broken first
        (rules never broken are absent); None when the env does not report violations."""
        if not self.episodes or any(e.violations is None for e in self.episodes):
            return None
        counts = Counter(rule for episode in self.episodes for rule in set(episode.violations))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return {rule: count / len(self.episodes) for rule, count in ranked}


def evaluate(
    env: gym.vector.VectorEnv,
    policy: Policy,
    episodes: int,
    seed: int | None = None,
    optimal_return: float | None = None,
    on_episode: Callable[[Episode], None] | None = None,
    record: bool = False,
) -> EvalResult:
    """Run ``policy`` until ``episodes`` episodes have finished, spread evenly over the env's slots.

    Slot ``i`` runs ``episodes // n`` episodes (the first ``episodes % n`` slots one more), so short
    episodes are not over-represented. ``seed`` seeds slot ``i`` with ``seed + i``. With
    ``optimal_return`` (``V*(start)``), the metrics include the Monte-Carlo ``regret``.
    ``on_episode`` is called with each finished episode (e.g. to advance a progress bar). With ``record``,
    each episode keeps its turns (``Episode.steps``), e.g. for a trajectory dataset.
    """
    n = env.num_envs
    quota = [episodes // n + (i < episodes % n) for i in range(n)]
    first = [None if seed is None else seed + i for i in range(n)]  # later episodes: the slot's autoreset
    starts = [[first[i]] + [None] * (q - 1) if q else [] for i, q in enumerate(quota)]
    return _play(env, policy, starts, optimal_return, on_episode, record)


def evaluate_tasks(
    env: gym.vector.VectorEnv,
    policy: Policy,
    task_seeds: Sequence[int],
    optimal_return: float | None = None,
    on_episode: Callable[[Episode], None] | None = None,
    record: bool = False,
    expert: Policy | None = None,
) -> EvalResult:
    """One episode per entry of ``task_seeds``, started by ``reset(seed=task_seeds[j])``.

    A seed fixes a task (and the env's random draws within it), so a repeated seed is a repeated
    trial of the same task: that is what pass^k (``EvalResult.metrics``) is measured on. The
    episodes are dealt to the slots in turn. With ``record``, an ``expert`` labels every recorded turn with
    the action it would take in that state (``Step.expert_action``; DAgger: the policy plays, the expert
    labels); other arguments as for :func:`evaluate`.
    """
    if expert is not None and not record:
        raise ValueError("an expert labels the recorded turns: pass record=True with it")
    n = env.num_envs
    return _play(env, policy, [list(task_seeds[i::n]) for i in range(n)], optimal_return, on_episode, record, expert)


def _play(
    env: gym.vector.VectorEnv,
    policy: Policy,
    starts: list[list[int | None]],
    optimal_return: float | None,
    on_episode: Callable[[Episode], None] | None,
    record: bool = False,
    expert: Policy | None = None,
) -> EvalResult:
    """Slot ``i`` plays one episode per entry of ``starts[i]``: from ``reset(seed=s)``, or for ``None``
    from the vector env's own autoreset (unseeded at the start); afterwards the slot idles. An ``expert``
    labels the recorded turns.

    The policy (and the expert) is shown an idle slot as a copy of a playing slot's state, and what it answers
    there is ignored: a policy that does the work of equal states once (the LLM's) then spends nothing on the
    slots that wait for the last episodes, which it would otherwise play to no use."""
    n = env.num_envs
    queues = [deque(slot) for slot in starts]
    total = sum(map(len, queues))
    result = EvalResult(optimal_return=optimal_return)
    returns, lengths = np.zeros(n), np.zeros(n, dtype=int)
    steps: list[list[Step]] = [[] for _ in range(n)]
    observations, infos = env.reset(seed=[queue[0] if queue else None for queue in queues])
    slots = [slot_info(infos, i) for i in range(n)]
    policy.bind(env)
    if expert is not None:
        expert.bind(env)
    while len(result.episodes) < total:
        playing = next(i for i in range(n) if queues[i])
        shown = [i if queues[i] else playing for i in range(n)]
        shown_observations, shown_slots = [observations[i] for i in shown], [slots[i] for i in shown]
        actions = policy.act(shown_observations, shown_slots)
        labels = [None] * n if expert is None else expert.act(shown_observations, shown_slots)  # before the step
        seen, before = list(observations), slots
        observations, rewards, terminated, truncated, infos = env.step(actions)
        slots = [slot_info(infos, i) for i in range(n)]
        for i in range(n):
            if record and queues[i]:  # the slot plays a counted episode (not idling after its quota)
                ended = terminated[i] or truncated[i]
                steps[i].append(Step(seen[i], before[i], actions[i], float(rewards[i]), bool(terminated[i]),
                                     bool(truncated[i]), slot_info(infos["final_info"], i) if ended else slots[i],
                                     labels[i]))
        returns += rewards
        lengths += 1
        reseed, mask = [None] * n, np.zeros(n, dtype=bool)
        for i in np.flatnonzero(terminated | truncated):
            if queues[i]:
                final = slot_info(infos["final_info"], i)
                violations = tuple(final["violations"]) if "violations" in final else None
                episode = Episode(float(returns[i]), int(lengths[i]), bool(final["success"]),
                                  int(final["invalid_actions"]), queues[i].popleft(), violations,
                                  steps[i] if record else None)
                result.episodes.append(episode)
                if on_episode is not None:
                    on_episode(episode)
                if queues[i] and queues[i][0] is not None:
                    reseed[i], mask[i] = queues[i][0], True
            returns[i], lengths[i], steps[i] = 0.0, 0, []
        if mask.any():  # replace the autoreset's unseeded episode by the slot's next task
            observations, reset_infos = env.reset(seed=reseed, options={"reset_mask": mask})
            for i in np.flatnonzero(mask):
                slots[i] = slot_info(reset_infos, i)
    return result
