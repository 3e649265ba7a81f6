"""``textgym benchmark``: every policy on every env and seed, through the shared evaluation path.

For each (env, policy, seed) the benchmark composes the run config that ``textgym train`` would use
(``env=<env> policy=<policy> seed=<seed>`` and the policy's :class:`PolicySetup`), gets the policy
(built, trained on the fly, or loaded from a checkpoint) and plays ``tasks x trials`` episodes: each
task (an env reset seed) ``trials`` times, so that tau-bench's pass^k can be estimated. Each seed
plays its own tasks, the same for every policy. Outputs, in the run dir (statistics:
:mod:`textgym.leaderboard`): ``results.csv`` (one row per policy and env, every metric with its
interval), ``aggregate.csv`` (the interquartile mean of success across envs per policy),
``comparisons.csv`` (every pair of policies), ``episodes.csv`` (every episode), ``leaderboard.md``,
``success.png``, ``learning_curves.png`` (for trained policies) and a W&B run with the tables and figures.
On each two-player env, a round robin of the policies follows the grid (:mod:`textgym.round_robin`):
``ratings_<env>.csv`` (OpenSkill rating and uncertainty, win/draw/loss rates, exploitability) and
``matches_<env>.csv``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
from hydra import compose
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.progress import Progress

from textgym.algorithms.callbacks import EvalHistory, ProgressBar, progress_display
from textgym.algorithms.evaluation import EVAL_SEED_OFFSET, Episode, evaluate_tasks, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.factory import BaseModels, load_policy, make_algorithm, make_env, make_policy, store_schemas
from textgym.leaderboard import Cell, Design, Leaderboard
from textgym.loggers import LoggerConfig, make_logger
from textgym.policies.base import Policy
from textgym.round_robin import RoundRobinConfig, RoundRobins
from textgym.settings import USER_ERRORS, one_line
from textgym.tables import markdown_table
from textgym.tournament import ratings_table, standing_rows

log = logging.getLogger(__name__)

ALL_ENVS = "all"
"""The entry of ``envs`` that stands for every config in the ``env`` group."""


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
    """Episodes per task; pass^k needs ``trials >= k`` (and so ``trials >= 2`` for any)."""
    max_k: int = 4
    """pass^1 .. pass^min(max_k, trials) are reported (tau-bench's estimate from ``trials`` runs per task)."""
    num_envs: int = 8
    """Vector-env slots stepped together."""
    confidence: float = 0.95
    """Level of every interval (Wilson, bootstrap, comparisons) and of what counts as distinguishable."""
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
    torch_threads: int | None = 1
    """Torch's CPU threads while the cells run (restored after); None keeps torch's setting. On two busy
    cores one thread ran SmolLM2's scoring about 7x faster than two (they wait for each other); on a
    machine of your own, more threads may pay."""
    round_robin: RoundRobinConfig = field(default_factory=RoundRobinConfig)
    """The round robin of the policies on each two-player env, after the grid (``round_robin.enabled=false``: none)."""
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
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads={self.torch_threads} must be >= 1, or null to keep torch's setting")
        for name in ("tasks", "trials", "num_envs", "max_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not 0.0 < self.confidence < 1.0 or self.resamples < 100:
            raise ValueError(
                f"need 0 < confidence ({self.confidence}) < 1 and resamples ({self.resamples}) >= 100"
            )

    def describe(self, policy: str) -> str:
        """How ``policy`` is obtained, in Markdown (for the leaderboard)."""
        setup = self.setup.get(policy, PolicySetup())
        config = f"`policy={setup.policy or policy}`"
        if setup.checkpoint is not None:
            return f"{config} loaded from `{setup.checkpoint}`"
        how = "as built"
        if setup.algorithm is not None:
            how = f"trained on each env and seed with `algorithm={setup.algorithm}`"
        return f"{config} {how}" + (f" (`{' '.join(setup.overrides)}`)" if setup.overrides else "")

    def design(self) -> Design:
        """The run's size and statistics settings, for the :class:`~textgym.leaderboard.Leaderboard`."""
        return Design(len(self.seeds), self.tasks, self.trials, self.max_k, self.confidence, self.resamples)


def store_benchmark_schema() -> None:
    """Register :class:`BenchmarkConfig` as the schema of ``conf/benchmark.yaml``."""
    store_schemas()
    ConfigStore.instance().store(name="benchmark_schema", node=BenchmarkConfig)


# ---- running the grid ---------------------------------------------------------------------------------


OnPolicy = Callable[[Cell, int, DictConfig, Policy], None]
"""A hook that sees each policy the grid obtained: ``(cell, seed, run config, policy)``."""


class Grid:
    """Runs the cells of a benchmark (envs x policies, each over the seeds) under one progress bar.

    LLM policies share their base model across cells (:class:`~textgym.factory.BaseModels`): it is loaded
    once per run, and each cell's policy brings only its own adapters, value head, generator and caches.
    """

    def __init__(self, cfg: BenchmarkConfig, searchpath: list[str]) -> None:
        self.cfg = cfg
        self.models = BaseModels()
        self.searchpath = (
            [f"hydra.searchpath=[{','.join(repr(p) for p in searchpath)}]"] if searchpath else []
        )

    def options(self, group: str) -> list[str]:
        """The configs of ``group`` (``env``, ``policy``), the user's search path included, less the
        schema nodes stored in the group (``llm_schema``)."""
        loader = GlobalHydra.instance().config_loader()
        options = loader.get_group_options(group, config_name="config", overrides=self.searchpath)
        return [name for name in options if not name.endswith("_schema")]

    def env_names(self) -> list[str]:
        """``cfg.envs`` with ``all`` expanded to the ``env`` group's configs, less ``cfg.exclude_envs``."""
        names = [
            env for name in self.cfg.envs for env in (self.options("env") if name == ALL_ENVS else [name])
        ]
        return [name for name in dict.fromkeys(names) if name not in self.cfg.exclude_envs]

    def validate(self) -> None:
        """Check every env and policy name and compose each cell's run config, so that a typo stops the
        benchmark before any cell runs; raises ``ValueError`` naming the entry and the choices."""
        envs, known = self.env_names(), self.options("env")
        for env in envs:
            if env not in known:
                raise ValueError(f"envs: {env!r} is not a config of the env group; choose from {known}")
        policies = self.options("policy")
        for name in self.cfg.policies:
            if (self.cfg.setup.get(name, PolicySetup()).policy or name) not in policies:
                raise ValueError(
                    f"policies: {name!r} is neither an entry of setup {sorted(self.cfg.setup)} nor a config "
                    f"of the policy group {policies}"
                )
        for env in envs:
            for name in self.cfg.policies:
                self.run_config(name, env, self.cfg.seeds[0])

    def task_seeds(self, seed: int) -> list[int]:
        """The reset seed of each episode of run ``seed``: its ``tasks`` tasks, each ``trials`` times."""
        first = EVAL_SEED_OFFSET + seed * self.cfg.tasks
        return [task for task in range(first, first + self.cfg.tasks) for _ in range(self.cfg.trials)]

    def run(self, on_policy: OnPolicy | None = None) -> list[Cell]:
        """Every cell, in order; ``on_policy(cell, seed, run config, policy)`` sees each policy before it plays."""
        cfg, envs = self.cfg, self.env_names()
        per_cell = len(cfg.seeds) * cfg.tasks * cfg.trials
        cells: list[Cell] = []
        with progress_display() as progress, torch_threads(cfg.torch_threads):
            grid = progress.add_task("[bold]benchmark", total=len(envs) * len(cfg.policies) * per_cell)
            for env in envs:
                for name in cfg.policies:
                    cell = Cell(name, env)
                    progress.update(grid, description=f"[bold]benchmark[/] {name} on {env}")
                    started, cpu = time.perf_counter(), time.process_time()
                    try:
                        for seed in cfg.seeds:
                            self.run_seed(cell, seed, progress, lambda _: progress.advance(grid), on_policy)
                    except Exception as error:  # any failure of a cell is recorded (see OnError)
                        if cfg.on_error is OnError.stop:
                            raise
                        cell.error = f"{type(error).__name__}: {error}"
                        log.warning("%s on %s failed, shown as n/a: %s", name, env, cell.error, exc_info=True)
                    steps = sum(e.length for run in cell.episodes.values() for e in run)
                    log.info("%s on %s: %d steps in %.1f s (%.1f CPU-s)", name, env, steps,
                             time.perf_counter() - started, time.process_time() - cpu)
                    cells.append(cell)
                    progress.update(grid, completed=len(cells) * per_cell)
        return cells

    def run_config(self, name: str | None, env: str, seed: int) -> DictConfig:
        """The ``textgym train`` config of one run (``conf/config.yaml`` with the run's overrides); with no
        policy ``name``, the config's own policy and only the overrides of every run."""
        setup = self.cfg.setup.get(name, PolicySetup()) if name is not None else PolicySetup()
        overrides = [f"env={env}", f"seed={seed}", "logger=none"]
        overrides += [f"policy={setup.policy or name}"] if name is not None else []
        overrides += [f"algorithm={setup.algorithm}"] if setup.algorithm else []
        return compose(
            config_name="config",
            overrides=[*overrides, *self.cfg.overrides, *setup.overrides, *self.searchpath],
        )

    def run_seed(
        self, cell: Cell, seed: int, progress: Progress, on_episode: Callable[[Episode], None],
        on_policy: OnPolicy | None = None,
    ) -> None:
        """Get the policy of run ``seed`` and play its tasks."""
        run = self.run_config(cell.policy, cell.env, seed)
        env_fn = partial(make_env, run.env, run.reward)
        policy, curve = self.obtain_policy(cell, seed, run, env_fn, progress)
        if on_policy is not None:
            on_policy(cell, seed, run, policy)
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
            return load_policy(run.policy, directory, self.models), read_learning_curve(directory)
        policy = make_policy(run.policy, self.models)
        if setup.algorithm is None:
            return policy, []
        history = EvalHistory()
        bar = ProgressBar(progress=progress, label=f"train {cell.policy} on {cell.env} (seed {seed})")
        make_algorithm(run.algorithm, seed=seed).learn(env_fn, policy, [history, bar])
        return policy, [(episode, metrics["success_rate"]) for episode, metrics in history.rows]


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch's CPU threads set to ``threads`` inside the block (None: left as they are)."""
    if threads is None:
        yield
        return
    import torch  # here, not at import: the CLI parses its config without torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def read_learning_curve(directory: Path) -> list[tuple[int, float]]:
    """``(episode, success_rate)`` from a ``textgym train`` dir's ``learning_curve.json`` (or none)."""
    path = directory / "learning_curve.json"
    if not path.exists():
        return []
    return [(row["episode"], row["success_rate"]) for row in json.loads(path.read_text())]


# ---- the Hydra app ------------------------------------------------------------------------------------

store_benchmark_schema()


@hydra.main(config_path="pkg://textgym.conf", config_name="benchmark", version_base="1.3")
def benchmark(cfg: DictConfig) -> None:
    """Check the config, run the grid, write the leaderboard files, log them to W&B and print the success
    table. A bad config is one line on stderr before anything is written; if every cell failed, the exit
    status is 1 (after the files, which list the errors)."""
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    try:
        config: BenchmarkConfig = OmegaConf.to_object(cfg)
        grid = Grid(config, list(hc.searchpath))
        grid.validate()
        runs = {env: grid.run_config(None, env, config.seeds[0]) for env in grid.env_names()}
        round_robins = RoundRobins(config, runs, out, grid.models, list(hc.searchpath))
        round_robins.validate()
    except USER_ERRORS as error:
        raise SystemExit(f"textgym benchmark: {one_line(error)}") from None
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    cells = grid.run(round_robins.keep)
    board = Leaderboard(config.design(), cells, {p: config.describe(p) for p in config.policies})
    command = " ".join(["textgym benchmark", *hc.overrides.task])
    figures = board.write(out, command)
    logger = make_logger(
        config.logger, OmegaConf.to_container(cfg, resolve=True), out, name="benchmark", group=None
    )
    logger.log_table("benchmark/results", *board.result_rows())
    logger.log_table("benchmark/aggregate", *board.aggregate_rows())
    logger.log_table("benchmark/comparisons", *board.comparison_rows())
    logger.log_images({f"benchmark/{name}": path for name, path in figures.items()})
    tables = []
    with torch_threads(config.torch_threads):
        for env in round_robins.envs:
            try:
                result = round_robins.play(env, cells)
            except Exception as error:  # as a failing cell (see OnError)
                if config.on_error is OnError.stop:
                    raise
                log.warning("round robin on %s failed: %s: %s", env, type(error).__name__, error, exc_info=True)
                tables.append(f"round robin on {env} failed: {type(error).__name__}: {error} (see the log)")
                continue
            if result is not None:
                round_robins.write(result)
                logger.log_table(f"benchmark/ratings_{env}", *standing_rows(result.standings))
                tables.append(f"round robin on {env} ({config.round_robin.games} games per ordered pair and move "
                              f"order, {result.seconds:.1f} s; ratings_{env}.csv):\n\n{ratings_table(result.standings)}")
    logger.finish({f"iqm_success/{p}": a.estimate.value for p, a in board.aggregate.items()})
    if all(cell.error for cell in cells):
        raise SystemExit(
            f"textgym benchmark: every cell failed, e.g. {cells[0].error} (tracebacks in the log, in {out})"
        )
    print("\n\n".join([markdown_table(*board.success_table()), *tables,  # noqa: T201
                       f"leaderboard, CSVs and figures in {out}"]))
