"""The statistics and files of ``textgym benchmark``: estimates per cell, the ranking, pairwise comparisons.

* Per (policy, env): the success rate with a Wilson interval at the effective number of trials (repeated
  trials of one task are correlated), every other metric with a percentile bootstrap over tasks.
* Across envs: the interquartile mean (IQM) of success, ranked only over the envs that every ranked
  policy ran; policies that ran on fewer are shown apart with their count.
* For every pair of policies, on the envs both ran: rliable's probability of improvement and the paired
  per-task difference in success, with stratified bootstrap intervals, and whether they are
  distinguishable at the run's confidence; per env, the minimum detectable difference.

A zero-width interval is printed only when every task and trial gave the same value, and is marked ``†``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from textgym.algorithms.evaluation import Episode, TaskTable
from textgym.algorithms.statistics import (
    Comparison,
    Interval,
    bootstrap_intervals,
    compare,
    effective_trials,
    iqm,
    iqm_interval,
    minimum_detectable_difference,
    no_spread,
    success_interval,
)
from textgym.plots import plot_learning_curves, plot_scores
from textgym.tables import markdown_table, write_csv

METRICS = ["success_rate", "mean_return", "mean_length", "invalid_action_rate", "violation_rate", "regret"]
"""Metrics in the order of the outputs (pass^1 .. pass^max_k follow); a metric no cell has is left out."""
HEADINGS = {
    "success_rate": "success",
    "mean_return": "return",
    "mean_length": "length",
    "invalid_action_rate": "invalid",
    "violation_rate": "violations",
    "regret": "regret",
}
NO_SPREAD = "†"
"""Marks a zero-width interval: the data had no spread at all."""


@dataclass
class Cell:
    """One policy on one env: its runs (one per seed) and what came of them."""

    policy: str
    env: str
    env_id: str = ""
    episodes: dict[int, list[Episode]] = field(default_factory=dict)
    """Seed -> the episodes of that run."""
    optimal_return: float | None = None
    """``V*(start)`` within the step limit, where the env has exact ground truth."""
    curves: list[list[tuple[int, float]]] = field(default_factory=list)
    """Learning curves of the runs that trained: ``(training episode, eval success rate)`` points."""
    error: str | None = None
    """Why the cell failed (``on_error=skip``); None when it ran."""

    def table(self) -> TaskTable:
        return TaskTable([episode for run in self.episodes.values() for episode in run])

    def runs(self) -> tuple[list[float], list[float]]:
        """Each seed's success rate and :func:`effective_trials`, in seed order."""
        tables = [TaskTable(self.episodes[seed]) for seed in sorted(self.episodes)]
        return (
            [float(t.successes.sum() / t.trials.sum()) for t in tables],
            [effective_trials(t.successes, t.trials) for t in tables],
        )

    def task_success(self) -> dict[int, float]:
        """Task (reset seed) -> the success rate of its trials."""
        trials: dict[int, list[bool]] = {}
        for run in self.episodes.values():
            for episode in run:
                trials.setdefault(episode.seed, []).append(episode.success)
        return {task: float(np.mean(successes)) for task, successes in trials.items()}


@dataclass
class Estimate:
    """A point estimate and its confidence interval; ``†`` marks a zero-width one."""

    value: float
    low: float
    high: float

    @property
    def no_spread(self) -> bool:
        return self.low == self.high

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]" + (NO_SPREAD if self.no_spread else "")

    @classmethod
    def of(cls, value: float, interval: Interval) -> Estimate:
        return cls(float(value), *interval)


@dataclass
class Aggregate:
    """A policy's IQM of success over the envs it is ranked on (or, if not ranked, all it ran)."""

    estimate: Estimate
    envs: list[str]
    ranked: bool


@dataclass
class PairComparison:
    """Policy ``a`` against policy ``b`` on the envs both ran."""

    a: str
    b: str
    envs: list[str]
    per_env: list[Comparison]
    overall: Comparison

    def verdict(self, comparison: Comparison) -> str:
        if not comparison.distinguishable:
            return "not distinguishable"
        return f"{self.a if comparison.improvement > 0.5 else self.b} better"


@dataclass
class Design:
    """The size of the benchmark run and the settings of its statistics."""

    seeds: int
    tasks: int
    trials: int
    max_k: int = 4
    confidence: float = 0.95
    resamples: int = 2000

    @property
    def episodes(self) -> int:
        return self.seeds * self.tasks * self.trials


@dataclass
class Leaderboard:
    """Every estimate, the ranking and the pairwise comparisons of a benchmark's cells."""

    design: Design
    cells: list[Cell]
    descriptions: dict[str, str] = field(default_factory=dict)
    """Policy -> how it was obtained (Markdown), for the leaderboard."""
    estimates: dict[tuple[str, str], dict[str, Estimate]] = field(default_factory=dict)
    effective: dict[tuple[str, str], float] = field(default_factory=dict)
    """(policy, env) -> the cell's effective number of independent trials."""
    aggregate: dict[str, Aggregate] = field(default_factory=dict)
    policies: list[str] = field(default_factory=list)
    """Ranked policies best first, then those that ran on a subset of the envs (best first)."""
    envs: list[str] = field(default_factory=list)
    comparisons: list[PairComparison] = field(default_factory=list)

    def __post_init__(self) -> None:
        d, rng = self.design, np.random.default_rng(0)
        self.envs = list(dict.fromkeys(cell.env for cell in self.cells))
        ran = [cell for cell in self.cells if cell.error is None]
        for cell in ran:
            table = cell.table()
            values = table.estimates(np.arange(len(table)), cell.optimal_return, d.max_k)
            intervals = bootstrap_intervals(
                table, cell.optimal_return, d.max_k, d.confidence, d.resamples, rng
            )
            intervals["success_rate"] = success_interval(table.successes, table.trials, d.confidence)
            intervals.update(_pass_k_intervals(table, intervals))
            self.estimates[cell.policy, cell.env] = {
                k: Estimate.of(v, intervals[k]) for k, v in values.items()
            }
            self.effective[cell.policy, cell.env] = effective_trials(table.successes, table.trials)
        ran_on = {p: [c.env for c in ran if c.policy == p] for p in dict.fromkeys(c.policy for c in ran)}
        ranked, shared = _ranking(ran_on, self.envs)
        by_cell = {(c.policy, c.env): c for c in ran}
        for policy, envs in ran_on.items():
            envs = shared if policy in ranked else envs
            runs = [by_cell[policy, env].runs() for env in envs]
            rates, effective = (
                np.array([r for r, _ in runs]).T,
                np.array([n for _, n in runs]).T,
            )  # (seeds, envs)
            estimate = Estimate.of(iqm(rates), iqm_interval(rates, effective, d.confidence, d.resamples, rng))
            self.aggregate[policy] = Aggregate(estimate, envs, policy in ranked)
        best_first = sorted(self.aggregate, key=lambda p: -self.aggregate[p].estimate.value)
        self.policies = [p for p in best_first if p in ranked] + [p for p in best_first if p not in ranked]
        self.policies += [p for p in dict.fromkeys(c.policy for c in self.cells) if p not in self.policies]
        for a, b in itertools.combinations([p for p in self.policies if p in ran_on], 2):
            envs = [env for env in ran_on[a] if env in ran_on[b]]
            if envs:
                self.comparisons.append(self._compare(by_cell, a, b, envs, rng))

    def _compare(
        self, by_cell: dict, a: str, b: str, envs: list[str], rng: np.random.Generator
    ) -> PairComparison:
        x, y = [], []
        for env in envs:
            first, second = by_cell[a, env].task_success(), by_cell[b, env].task_success()
            tasks = sorted(set(first) & set(second))
            x.append(np.array([first[t] for t in tasks]))
            y.append(np.array([second[t] for t in tasks]))
        per_env, overall = compare(x, y, self.design.confidence, self.design.resamples, rng)
        return PairComparison(a, b, envs, per_env, overall)

    @property
    def metrics(self) -> list[str]:
        present = {name for estimates in self.estimates.values() for name in estimates}
        return [
            m for m in [*METRICS, *(f"pass^{k}" for k in range(1, self.design.max_k + 1))] if m in present
        ]

    def detectable(self, env: str) -> tuple[float, float] | None:
        """The env's mean effective trials per cell and the minimum detectable difference at that size."""
        sizes = [n for (_, e), n in self.effective.items() if e == env]
        if not sizes:
            return None
        n = float(np.mean(sizes))
        return n, minimum_detectable_difference(n, self.design.confidence)

    # -- tables --
    def result_rows(self) -> tuple[list[str], list[list]]:
        columns = ["policy", "env", "env_id", "episodes", "effective_trials", "error"]
        columns += [f"{m}{suffix}" for m in self.metrics for suffix in ("", "_low", "_high")]
        columns += ["no_spread"]
        rows = []
        for cell in self.cells:
            estimates = self.estimates.get((cell.policy, cell.env), {})
            values = [x for m in self.metrics for x in _triple(estimates.get(m))]
            flat = " ".join(m for m in self.metrics if m in estimates and estimates[m].no_spread)
            n = self.effective.get((cell.policy, cell.env))
            episodes = sum(map(len, cell.episodes.values()))
            rows.append([cell.policy, cell.env, cell.env_id, episodes, n, cell.error, *values, flat])
        return columns, rows

    def aggregate_rows(self) -> tuple[list[str], list[list]]:
        columns = ["policy", "envs", "ranked", "iqm_success", "iqm_success_low", "iqm_success_high"]
        return columns, [
            [
                p,
                len(self.aggregate[p].envs),
                int(self.aggregate[p].ranked),
                *_triple(self.aggregate[p].estimate),
            ]
            for p in self.policies
            if p in self.aggregate
        ]

    def comparison_rows(self) -> tuple[list[str], list[list]]:
        """One row per pair of policies and shared env, then one per pair over all their shared envs
        (``env=all``)."""
        columns = [
            "policy_a",
            "policy_b",
            "env",
            "envs",
            "p_improvement",
            "p_improvement_low",
            "p_improvement_high",
            "success_difference",
            "success_difference_low",
            "success_difference_high",
            "distinguishable",
            "no_spread",
        ]
        rows = []
        for pair in self.comparisons:
            for env, c in [*zip(pair.envs, pair.per_env), ("all", pair.overall)]:
                rows.append(
                    [
                        pair.a,
                        pair.b,
                        env,
                        1 if env != "all" else len(pair.envs),
                        c.improvement,
                        *c.improvement_interval,
                        c.difference,
                        *c.difference_interval,
                        int(c.distinguishable),
                        int(no_spread(c.difference_interval)),
                    ]
                )
        return columns, rows

    def episode_rows(self) -> tuple[list[str], list[list]]:
        columns = [
            "policy",
            "env",
            "seed",
            "task",
            "return",
            "length",
            "success",
            "invalid_actions",
            "violations",
        ]
        rows = [
            [
                c.policy,
                c.env,
                seed,
                e.seed,
                e.reward,
                e.length,
                int(e.success),
                e.invalid_actions,
                None if e.violations is None else len(e.violations),
            ]
            for c in self.cells
            for seed, run in c.episodes.items()
            for e in run
        ]
        return columns, rows

    def success_table(self, ranked: bool = True) -> tuple[list[str], list[list[str]]]:
        """Ranked policies (or, with ``ranked=False``, the others) x (IQM, envs run, success per env),
        as text."""
        rows = [
            [p, *self._aggregate_cells(p), *(self._success(p, env) for env in self.envs)]
            for p in self.policies
            if (p in self.aggregate and self.aggregate[p].ranked) == ranked
        ]
        return ["policy", "IQM", "envs", *self.envs], rows

    def _aggregate_cells(self, policy: str) -> list[str]:
        if policy not in self.aggregate:
            return ["n/a", f"0/{len(self.envs)}"]
        aggregate = self.aggregate[policy]
        return [str(aggregate.estimate), f"{len(aggregate.envs)}/{len(self.envs)}"]

    def _success(self, policy: str, env: str) -> str:
        estimates = self.estimates.get((policy, env))
        return str(estimates["success_rate"]) if estimates else "n/a"

    def comparison_table(self) -> tuple[list[str], list[list[str]]]:
        columns = ["A", "B", "shared envs", "P(A > B)", "success A - B", f"at {self.design.confidence:.0%}"]
        rows = [
            [
                pair.a,
                pair.b,
                str(len(pair.envs)),
                str(Estimate.of(pair.overall.improvement, pair.overall.improvement_interval)),
                str(Estimate.of(pair.overall.difference, pair.overall.difference_interval)),
                pair.verdict(pair.overall),
            ]
            for pair in self.comparisons
        ]
        return columns, rows

    def detectable_table(self) -> tuple[list[str], list[list[str]]]:
        rows = []
        for env in self.envs:
            found = self.detectable(env)
            rows.append([env, f"{found[0]:.1f}", f"{found[1]:.2f}"] if found else [env, "n/a", "n/a"])
        return ["env", "effective trials per policy (mean)", "minimum detectable difference"], rows

    def markdown(self, command: str) -> str:
        d = self.design
        level = f"{d.confidence:.0%}"
        lines = [
            "# textgym leaderboard",
            "",
            f"`{command}`",
            "",
            f"Each policy ran on each env with {d.seeds} seed{'s' * (d.seeds != 1)} x {d.tasks} tasks x "
            f"{d.trials} trials (the same env seed) = {d.episodes} episodes; every policy played the same "
            "tasks.",
            "",
            f"- **Success rate**: {level} Wilson score interval at the cell's effective number of "
            "independent trials (trials of one task are correlated: Kish's design effect, from the "
            "within-task correlation of success), so 10 of 10 does not print as certain.",
            f"- **Other metrics**: {level} percentile bootstrap over tasks (a task's trials resampled "
            "together). pass^k: the chance that k trials of a task all succeed (tau-bench's estimator).",
            "- **IQM**: the interquartile mean of the success rate over seeds x envs, ranked only over the "
            "envs that every ranked policy ran; its interval is stratified by env and redraws each run's "
            "success rate at its effective size (task-level uncertainty), resampling seeds too when there "
            "are 2 or more (rliable's method).",
            "- **Comparisons**: rliable's probability of improvement P(A > B) (a random task of A against "
            "one of B, ties half) and the paired per-task difference in success, each averaged over the "
            f"shared envs with a stratified bootstrap over tasks; distinguishable at {level} when "
            "the interval of P(A > B) excludes 0.5.",
            f"- {NO_SPREAD}: a zero-width interval, printed only when every task and trial gave the same "
            "value.",
            "",
            "## Success rate",
            "",
            markdown_table(*self.success_table()),
        ]
        apart = self.success_table(ranked=False)
        if apart[1]:
            lines += [
                "",
                "Not ranked: these ran on a subset of the envs (their IQM is over those envs only).",
                "",
                markdown_table(*apart),
            ]
        if self.comparisons:
            lines += ["", "## Pairwise comparisons", "", markdown_table(*self.comparison_table())]
        lines += [
            "",
            "## Minimum detectable difference",
            "",
            f"The smallest difference in success rate between two policies on an env that this run's size "
            f"detects with 80% power at {level} (two-sided, at the worst case p = 0.5), from the mean "
            "effective number of independent trials of the env's cells. Smaller differences in the tables "
            "are not evidence of a better policy.",
            "",
            markdown_table(*self.detectable_table()),
        ]
        lines += ["", "## How each policy was obtained", ""]
        lines += [f"- **{p}**: {self.descriptions.get(p, p)}" for p in self.policies]
        for env in self.envs:
            env_id = next((c.env_id for c in self.cells if c.env == env and c.env_id), "")
            columns = ["policy", *(HEADINGS.get(m, m) for m in self.metrics)]
            rows = [
                [
                    p,
                    *(
                        str(self.estimates[p, env][m]) if m in self.estimates.get((p, env), {}) else "n/a"
                        for m in self.metrics
                    ),
                ]
                for p in self.policies
            ]
            lines += [
                "",
                f"## {env}" + (f" (`{env_id}`)" if env_id else ""),
                "",
                markdown_table(columns, rows),
            ]
        failures = [c for c in self.cells if c.error]
        if failures:
            lines += ["", "## Failed cells", ""] + [f"- {c.policy} on {c.env}: {c.error}" for c in failures]
        return "\n".join(lines) + "\n"

    # -- files --
    def write(self, out: Path, command: str) -> dict[str, Path]:
        """Write the CSVs, the Markdown leaderboard and the figures; return the figures by name."""
        write_csv(out / "results.csv", *self.result_rows())
        write_csv(out / "aggregate.csv", *self.aggregate_rows())
        write_csv(out / "comparisons.csv", *self.comparison_rows())
        write_csv(out / "episodes.csv", *self.episode_rows())
        (out / "leaderboard.md").write_text(self.markdown(command))
        figures = {"success": out / "success.png"}
        scores = {
            p: {env: _triple(e["success_rate"]) for (q, env), e in self.estimates.items() if q == p}
            for p in self.policies
        }
        for p, aggregate in self.aggregate.items():
            scores[p]["IQM"] = _triple(aggregate.estimate)
        plot_scores(scores, figures["success"], f"success rate ({self.design.confidence:.0%} CI)")
        curves = {
            env: {c.policy: c.curves for c in self.cells if c.env == env and c.curves} for env in self.envs
        }
        curves = {env: by_policy for env, by_policy in curves.items() if by_policy}
        if curves:
            figures["learning_curves"] = out / "learning_curves.png"
            plot_learning_curves(curves, figures["learning_curves"])
        return figures


def _pass_k_intervals(table: TaskTable, intervals: dict[str, Interval]) -> dict[str, Interval]:
    """pass^1 is the success rate (every task ran the same trials), so it takes the success interval.

    A pass^k bootstrap collapses when every task gives the same pass^k although trials vary (no task
    won all k of its trials: ``0.00 [0.00, 0.00]`` with successes in the data); then the interval is
    ``[0, upper end of the success interval]``, as pass^k <= pass^1.
    """
    out = {"pass^1": intervals["success_rate"]} if "pass^1" in intervals else {}
    varied = 0 < table.successes.sum() < table.trials.sum()
    for name, interval in intervals.items():
        if name.startswith("pass^") and name != "pass^1" and varied and no_spread(interval):
            out[name] = (0.0, max(interval[1], intervals["success_rate"][1]))
    return out


def _ranking(ran_on: dict[str, list[str]], envs: list[str]) -> tuple[list[str], list[str]]:
    """The policies to rank and the envs to rank them on: those that ran on every env any policy ran on;
    if none did, those that ran on the most envs, over the envs all of them ran."""
    if not ran_on:
        return [], []
    union = [env for env in envs if any(env in ran for ran in ran_on.values())]
    full = [p for p, ran in ran_on.items() if len(ran) == len(union)]
    if full:
        return full, union
    most = max(len(ran) for ran in ran_on.values())
    ranked = [p for p, ran in ran_on.items() if len(ran) == most]
    shared = [env for env in union if all(env in ran_on[p] for p in ranked)]
    return (ranked, shared) if shared else (ranked[:1], ran_on[ranked[0]])


def _triple(estimate: Estimate | None) -> tuple:
    return (None, None, None) if estimate is None else (estimate.value, estimate.low, estimate.high)
