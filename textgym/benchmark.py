"""``textgym benchmark``: every policy on every env and seed, through the shared evaluation path.

For each (env, policy, seed) the benchmark composes the run config that ``textgym train`` would use
(``env=<env> policy=<policy> seed=<seed>`` and the policy's :class:`PolicySetup`), gets the policy
(built, trained on the fly, or loaded from a checkpoint) and plays ``tasks x trials`` episodes: each
task (an env reset seed) ``trials`` times, so that tau-bench's pass^k can be estimated. Each seed
plays its own tasks. Outputs, in the run dir: ``results.csv`` (one row per policy and env, every
metric with its bootstrap interval), ``aggregate.csv`` (the interquartile mean of success across envs
per policy), ``episodes.csv`` (every episode), ``leaderboard.md``, ``success.png``,
``learning_curves.png`` (for trained policies) and a W&B run with the tables and figures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import numpy as np
from hydra import compose
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.progress import Progress

from textgym.algorithms.callbacks import EvalHistory, ProgressBar, progress_display
from textgym.algorithms.evaluation import EVAL_SEED_OFFSET, Episode, TaskTable, evaluate_tasks, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.algorithms.statistics import bootstrap_intervals, iqm, iqm_interval
from textgym.factory import load_policy, make_algorithm, make_env, make_policy, store_schemas
from textgym.loggers import LoggerConfig, make_logger
from textgym.plots import plot_learning_curves, plot_scores
from textgym.policies.base import Policy
from textgym.tables import markdown_table, write_csv

log = logging.getLogger(__name__)

ALL_ENVS = "all"
"""The entry of ``envs`` that stands for every config in the ``env`` group."""
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


class OnError(str, Enum):
    """What a failing cell (a policy that cannot run on an env) does to the benchmark."""

    stop = "stop"
    """Raise the error: the benchmark ends."""
    skip = "skip"
    """Log it, show the cell as n/a with the error in the outputs, and go on."""


@dataclass
class PolicySetup:
    """How the benchmark gets one named policy (an entry of ``setup``)."""

    policy: str | None = None
    """Its config in the ``policy`` group (``conf/policy/``); None: the entry's own name."""
    algorithm: str | None = None
    """An ``algorithm`` config that trains the policy on each env and seed when no checkpoint is
    given (e.g. ``q_learning``, with that config's defaults); None: the policy is used as built."""
    checkpoint: str | None = None
    """A directory that the policy class's ``load(directory)`` reads, with ``{env}`` and ``{seed}``
    filled in (e.g. ``runs/{env}/{seed}``: a ``textgym train`` output dir is a checkpoint)."""
    overrides: list[str] = field(default_factory=list)
    """Overrides of this policy's run config, e.g. ``[policy.state_key=observation]``."""


@dataclass
class BenchmarkConfig:
    """``textgym benchmark``'s config (``conf/benchmark.yaml``)."""

    policies: list[str] = field(default_factory=lambda: ["random", "oracle", "tabular"])
    """Names in ``setup``, or configs of the ``policy`` group used as built."""
    envs: list[str] = field(default_factory=lambda: [ALL_ENVS])
    """Configs of the ``env`` group; ``all`` stands for every one of them."""
    exclude_envs: list[str] = field(default_factory=list)
    """Env configs left out (of ``all``, typically: e.g. envs whose customer is itself an LLM)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    """One run per seed: it seeds training, the policy's randomness, and picks the run's tasks."""
    tasks: int = 25
    """Tasks (env reset seeds) per run."""
    trials: int = 4
    """Episodes per task; pass^k needs ``trials >= k``."""
    max_k: int = 4
    """pass^1 .. pass^max_k are reported (tau-bench's estimate from ``trials`` runs per task)."""
    num_envs: int = 8
    """Vector-env slots stepped together."""
    confidence: float = 0.95
    """Level of the bootstrap confidence intervals."""
    resamples: int = 2000
    """Bootstrap resamples per interval."""
    overrides: list[str] = field(default_factory=list)
    """Overrides of every run config, e.g. ``[reward=sparse]``."""
    setup: dict[str, Any] = field(default_factory=dict)
    """How named policies are built, trained or loaded: name -> the fields of a :class:`PolicySetup` (a
    name not listed is its ``policy`` config, as built). Plain mappings, so that the command line can add
    entries: ``+setup.dqn={policy: sb3, algorithm: dqn}``."""
    on_error: OnError = OnError.skip
    """What a cell that fails does: ``skip`` (n/a in the outputs) or ``stop``."""
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    """Where the tables and figures go besides the files (the ``logger`` group)."""

    def __post_init__(self) -> None:
        self.on_error = OnError(self.on_error)
        for name, entry in self.setup.items():
            try:
                self.setup[name] = entry if isinstance(entry, PolicySetup) else PolicySetup(**entry)
            except TypeError as error:
                known = [f.name for f in fields(PolicySetup)]
                raise ValueError(f"setup.{name}: {error}; an entry has the fields {known}") from None
        if not self.policies or not self.envs or not self.seeds:
            raise ValueError("policies, envs and seeds must each name at least one entry")
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds={self.seeds} must be distinct and >= 0: each seed picks its own tasks")
        if min(self.tasks, self.num_envs, self.max_k) < 1:
            raise ValueError("tasks, num_envs and max_k must be >= 1")
        if self.trials < self.max_k:
            raise ValueError(
                f"pass^{self.max_k} needs every task run max_k times: raise trials={self.trials} "
                f"to at least max_k={self.max_k}, or lower max_k"
            )
        if not 0.0 < self.confidence < 1.0 or self.resamples < 100:
            raise ValueError(
                f"need 0 < confidence ({self.confidence}) < 1 and resamples ({self.resamples}) >= 100"
            )


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

    def success_by_seed(self) -> list[float]:
        return [float(np.mean([e.success for e in self.episodes[seed]])) for seed in sorted(self.episodes)]


@dataclass
class Estimate:
    """A metric's point estimate and confidence interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def store_benchmark_schema() -> None:
    """Register :class:`BenchmarkConfig` as the schema of ``conf/benchmark.yaml``."""
    store_schemas()
    ConfigStore.instance().store(name="benchmark_schema", node=BenchmarkConfig)


# ---- running the grid ---------------------------------------------------------------------------------


class Grid:
    """Runs the cells of a benchmark (envs x policies, each over the seeds) under one progress bar."""

    def __init__(self, cfg: BenchmarkConfig, searchpath: list[str]) -> None:
        self.cfg = cfg
        self.searchpath = (
            [f"hydra.searchpath=[{','.join(repr(p) for p in searchpath)}]"] if searchpath else []
        )

    def env_names(self) -> list[str]:
        """``cfg.envs`` with ``all`` expanded to the ``env`` group's configs, less ``cfg.exclude_envs``."""
        loader = GlobalHydra.instance().config_loader()
        names: list[str] = []
        for name in self.cfg.envs:
            names += (
                loader.get_group_options("env", config_name="config", overrides=self.searchpath)
                if name == ALL_ENVS
                else [name]
            )
        return [name for name in dict.fromkeys(names) if name not in self.cfg.exclude_envs]

    def task_seeds(self, seed: int) -> list[int]:
        """The reset seed of each episode of run ``seed``: its ``tasks`` tasks, each ``trials`` times."""
        first = EVAL_SEED_OFFSET + seed * self.cfg.tasks
        return [task for task in range(first, first + self.cfg.tasks) for _ in range(self.cfg.trials)]

    def run(self) -> list[Cell]:
        cfg, envs = self.cfg, self.env_names()
        per_cell = len(cfg.seeds) * cfg.tasks * cfg.trials
        cells: list[Cell] = []
        with progress_display() as progress:
            grid = progress.add_task("[bold]benchmark", total=len(envs) * len(cfg.policies) * per_cell)
            for env in envs:
                for name in cfg.policies:
                    cell = Cell(name, env)
                    progress.update(grid, description=f"[bold]benchmark[/] {name} on {env}")
                    try:
                        for seed in cfg.seeds:
                            self.run_seed(cell, seed, progress, lambda _: progress.advance(grid))
                    except Exception as error:  # any failure of a cell is recorded (see OnError)
                        if cfg.on_error is OnError.stop:
                            raise
                        cell.error = f"{type(error).__name__}: {error}"
                        log.warning("%s on %s failed, shown as n/a: %s", name, env, cell.error)
                    cells.append(cell)
                    progress.update(grid, completed=len(cells) * per_cell)
        return cells

    def run_config(self, name: str, env: str, seed: int) -> DictConfig:
        """The ``textgym train`` config of one run (``conf/config.yaml`` with the run's overrides)."""
        setup = self.cfg.setup.get(name, PolicySetup())
        overrides = [f"env={env}", f"policy={setup.policy or name}", f"seed={seed}", "logger=none"]
        overrides += [f"algorithm={setup.algorithm}"] if setup.algorithm else []
        return compose(
            config_name="config",
            overrides=[*overrides, *self.cfg.overrides, *setup.overrides, *self.searchpath],
        )

    def run_seed(
        self, cell: Cell, seed: int, progress: Progress, on_episode: Callable[[Episode], None]
    ) -> None:
        """Get the policy of run ``seed`` and play its tasks."""
        run = self.run_config(cell.policy, cell.env, seed)
        env_fn = partial(make_env, run.env, run.reward)
        policy, curve = self.obtain_policy(cell, seed, run, env_fn, progress)
        env = vector_env(env_fn, self.cfg.num_envs)
        if not cell.episodes:
            truth = GroundTruth.of(env.envs[0])
            cell.env_id, cell.optimal_return = run.env.id, truth.optimal_return if truth else None
        result = evaluate_tasks(env, policy, self.task_seeds(seed), cell.optimal_return, on_episode)
        env.close()
        cell.episodes[seed] = result.episodes
        if curve:
            cell.curves.append(curve)

    def obtain_policy(
        self, cell: Cell, seed: int, run: DictConfig, env_fn: Callable[[], gym.Env], progress: Progress
    ) -> tuple[Policy, list[tuple[int, float]]]:
        """The run's policy (loaded, trained or built) and its learning curve, where there is one."""
        setup = self.cfg.setup.get(cell.policy, PolicySetup())
        if setup.checkpoint is not None:
            directory = Path(setup.checkpoint.format(env=cell.env, seed=seed))
            return load_policy(run.policy, directory), read_learning_curve(directory)
        policy = make_policy(run.policy)
        if setup.algorithm is None:
            return policy, []
        history = EvalHistory()
        bar = ProgressBar(progress=progress, label=f"train {cell.policy} on {cell.env} (seed {seed})")
        make_algorithm(run.algorithm, seed=seed).learn(env_fn, policy, [history, bar])
        return policy, [(episode, metrics["success_rate"]) for episode, metrics in history.rows]


def read_learning_curve(directory: Path) -> list[tuple[int, float]]:
    """``(episode, success_rate)`` from a ``textgym train`` dir's ``learning_curve.json`` (or none)."""
    path = directory / "learning_curve.json"
    if not path.exists():
        return []
    return [(row["episode"], row["success_rate"]) for row in json.loads(path.read_text())]


# ---- statistics and outputs ---------------------------------------------------------------------------


@dataclass
class Leaderboard:
    """The estimates of every cell and the interquartile mean of success across envs per policy."""

    cfg: BenchmarkConfig
    cells: list[Cell]
    estimates: dict[tuple[str, str], dict[str, Estimate]] = field(default_factory=dict)
    aggregate: dict[str, tuple[Estimate, int]] = field(default_factory=dict)
    """Policy -> (IQM of success over seeds x envs, number of envs it ran on)."""
    policies: list[str] = field(default_factory=list)
    """In order of their IQM, best first."""
    envs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg, rng = self.cfg, np.random.default_rng(0)
        self.envs = list(dict.fromkeys(cell.env for cell in self.cells))
        self.policies = list(dict.fromkeys(cell.policy for cell in self.cells))
        for cell in self.cells:
            if cell.error is None:
                table = cell.table()
                values = table.estimates(np.arange(len(table)), cell.optimal_return, cfg.max_k)
                intervals = bootstrap_intervals(
                    table, cell.optimal_return, cfg.max_k, cfg.confidence, cfg.resamples, rng
                )
                self.estimates[cell.policy, cell.env] = {
                    k: Estimate(float(v), *intervals[k]) for k, v in values.items()
                }
        for policy in self.policies:
            runs = [
                cell.success_by_seed() for cell in self.cells if cell.policy == policy and cell.error is None
            ]
            if runs:
                scores = np.array(runs).T  # (seeds, envs)
                self.aggregate[policy] = (
                    Estimate(float(iqm(scores)), *iqm_interval(scores, cfg.confidence, cfg.resamples, rng)),
                    len(runs),
                )
        self.policies.sort(key=lambda p: -self.aggregate[p][0].value if p in self.aggregate else 1.0)

    @property
    def metrics(self) -> list[str]:
        present = {name for estimates in self.estimates.values() for name in estimates}
        return [m for m in [*METRICS, *(f"pass^{k}" for k in range(1, self.cfg.max_k + 1))] if m in present]

    # -- tables --
    def result_rows(self) -> tuple[list[str], list[list]]:
        columns = ["policy", "env", "env_id", "episodes", "error"]
        columns += [f"{m}{suffix}" for m in self.metrics for suffix in ("", "_low", "_high")]
        rows = []
        for cell in self.cells:
            estimates = self.estimates.get((cell.policy, cell.env), {})
            values = [x for m in self.metrics for x in _triple(estimates.get(m))]
            rows.append(
                [
                    cell.policy,
                    cell.env,
                    cell.env_id,
                    sum(map(len, cell.episodes.values())),
                    cell.error,
                    *values,
                ]
            )
        return columns, rows

    def aggregate_rows(self) -> tuple[list[str], list[list]]:
        columns = ["policy", "envs", "iqm_success", "iqm_success_low", "iqm_success_high"]
        return columns, [
            [p, self.aggregate[p][1], *_triple(self.aggregate[p][0])]
            for p in self.policies
            if p in self.aggregate
        ]

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
                e.violations,
            ]
            for c in self.cells
            for seed, run in c.episodes.items()
            for e in run
        ]
        return columns, rows

    def markdown(self, command: str) -> str:
        cfg = self.cfg
        lines = [
            "# textgym leaderboard",
            "",
            f"`{command}`",
            "",
            (
                f"Each policy ran on each env with {len(cfg.seeds)} seeds x {cfg.tasks} tasks x {cfg.trials} "
                f"trials (the same env seed) = {len(cfg.seeds) * cfg.tasks * cfg.trials} episodes. Brackets: "
                f"{cfg.confidence:.0%} percentile-bootstrap intervals over tasks; IQM: interquartile mean of "
                "the success rate over seeds x envs, stratified bootstrap over seeds (rliable's method). "
                "pass^k: the chance that k trials of a task all succeed (tau-bench's estimator)."
            ),
            "",
            "## Success rate",
            "",
            markdown_table(*self.success_table()),
        ]
        lines += ["", "## How each policy was obtained", ""]
        lines += [f"- **{p}**: {self.describe(p)}" for p in self.policies]
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

    def success_table(self) -> tuple[list[str], list[list[str]]]:
        """Policies x (IQM, envs run, success per env), as text."""
        rows = [
            [p, *self._aggregate_cells(p), *(self._success(p, env) for env in self.envs)]
            for p in self.policies
        ]
        return ["policy", "IQM", "envs", *self.envs], rows

    def _aggregate_cells(self, policy: str) -> list[str]:
        if policy not in self.aggregate:
            return ["n/a", "0"]
        estimate, envs = self.aggregate[policy]
        return [str(estimate), f"{envs}/{len(self.envs)}"]

    def _success(self, policy: str, env: str) -> str:
        estimates = self.estimates.get((policy, env))
        return str(estimates["success_rate"]) if estimates else "n/a"

    def describe(self, policy: str) -> str:
        setup = self.cfg.setup.get(policy, PolicySetup())
        config = f"`policy={setup.policy or policy}`"
        if setup.checkpoint is not None:
            return f"{config} loaded from `{setup.checkpoint}`"
        how = "as built"
        if setup.algorithm is not None:
            how = f"trained on each env and seed with `algorithm={setup.algorithm}`"
        return f"{config} {how}" + (f" (`{' '.join(setup.overrides)}`)" if setup.overrides else "")

    # -- files --
    def write(self, out: Path, command: str) -> dict[str, Path]:
        """Write the CSVs, the Markdown leaderboard and the figures; return the figures by name."""
        write_csv(out / "results.csv", *self.result_rows())
        write_csv(out / "aggregate.csv", *self.aggregate_rows())
        write_csv(out / "episodes.csv", *self.episode_rows())
        (out / "leaderboard.md").write_text(self.markdown(command))
        figures = {"success": out / "success.png"}
        scores = {
            p: {env: _triple(e["success_rate"]) for (q, env), e in self.estimates.items() if q == p}
            for p in self.policies
        }
        for p, (estimate, _) in self.aggregate.items():
            scores[p]["IQM"] = _triple(estimate)
        plot_scores(scores, figures["success"], f"success rate ({self.cfg.confidence:.0%} CI)")
        curves = {
            env: {c.policy: c.curves for c in self.cells if c.env == env and c.curves} for env in self.envs
        }
        curves = {env: by_policy for env, by_policy in curves.items() if by_policy}
        if curves:
            figures["learning_curves"] = out / "learning_curves.png"
            plot_learning_curves(curves, figures["learning_curves"])
        return figures


def _triple(estimate: Estimate | None) -> tuple:
    return (None, None, None) if estimate is None else (estimate.value, estimate.low, estimate.high)


# ---- the Hydra app ------------------------------------------------------------------------------------

store_benchmark_schema()


@hydra.main(config_path="pkg://textgym.conf", config_name="benchmark", version_base="1.3")
def benchmark(cfg: DictConfig) -> None:
    """Run the grid, write the leaderboard files, log them to W&B and print the success table."""
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    config: BenchmarkConfig = OmegaConf.to_object(cfg)
    cells = Grid(config, list(hc.searchpath)).run()
    board = Leaderboard(config, cells)
    command = " ".join(["textgym benchmark", *hc.overrides.task])
    figures = board.write(out, command)
    logger = make_logger(
        config.logger, OmegaConf.to_container(cfg, resolve=True), out, name="benchmark", group=None
    )
    logger.log_table("benchmark/results", *board.result_rows())
    logger.log_table("benchmark/aggregate", *board.aggregate_rows())
    logger.log_images({f"benchmark/{name}": path for name, path in figures.items()})
    logger.finish({f"iqm_success/{p}": estimate.value for p, (estimate, _) in board.aggregate.items()})
    print(f"{markdown_table(*board.success_table())}\n\nleaderboard, CSVs and figures in {out}")  # noqa: T201
