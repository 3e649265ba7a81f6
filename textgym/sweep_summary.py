"""``textgym sweep-summary <multirun dir>``: the ``results.json`` of every job of a sweep in one table.

Jobs that differ only in ``seed`` are one configuration: a row with the mean of each metric over its
seeds and, for the objective, a t interval over seeds. Rows are ranked by the mean objective, best first
(a NaN ranks last); columns are the parameters that differ between configurations (read from each
job's overrides). A ``results.json`` that cannot be read (corrupt, partial, written by something else)
is skipped with its path named; the summary goes on. Writes ``summary.csv``, ``summary.md`` and
``summary.png`` (the objective of each job against each swept parameter) into the sweep dir and prints
the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textgym.algorithms.statistics import mean_interval
from textgym.plots import plot_objective
from textgym.tables import markdown_table, write_csv

log = logging.getLogger(__name__)

SEED = "seed"
"""The override that varies between the jobs of one configuration."""


@dataclass
class Job:
    """One job's ``results.json``."""

    path: Path
    sweep: str | None
    job: int | None
    parameters: dict[str, str]
    """The job's overrides, ``key -> value`` as typed."""
    metrics: dict[str, float]

    @classmethod
    def read(cls, path: Path) -> Job:
        """The job at ``path``; raises ``ValueError`` saying what is wrong with the file."""
        try:
            results = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"not readable JSON ({error})") from None
        if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict):
            raise ValueError("no 'metrics' mapping (a partial or foreign results.json)")
        overrides, sweep = results.get("overrides", []), results.get("sweep") or {}
        if not isinstance(overrides, list) or not isinstance(sweep, dict):
            raise ValueError("'overrides' is not a list or 'sweep' not a mapping")
        metrics = {k: _metric(v) for k, v in results["metrics"].items()}
        parameters = dict(str(o).split("=", 1) for o in overrides if "=" in str(o))
        return cls(path, sweep.get("id"), sweep.get("job"), parameters, metrics)

    @property
    def configuration(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in self.parameters.items() if k != SEED))


def _metric(value: object) -> float:
    """A metric as a float (NaN for ``null`` or a value that is not a number)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


@dataclass
class Configuration:
    """The jobs of one configuration (they differ only in ``seed``)."""

    jobs: list[Job]

    def mean(self, metric: str) -> float:
        """The mean over seeds; NaN if a job lacks the metric or has NaN."""
        return float(np.mean([job.metrics.get(metric, math.nan) for job in self.jobs]))

    def interval(self, metric: str, confidence: float) -> tuple[float, float] | tuple[None, None]:
        found = mean_interval([job.metrics.get(metric, math.nan) for job in self.jobs], confidence)
        return found if found is not None else (None, None)


def collect(directory: Path) -> tuple[list[Job], dict[Path, str]]:
    """Every readable job under ``directory`` (its ``*/results.json``, at any depth), in job order, and
    the files skipped with the reason."""
    jobs, skipped = [], {}
    for path in sorted(directory.rglob("results.json")):
        try:
            jobs.append(Job.read(path))
        except ValueError as error:
            skipped[path] = str(error)
            log.warning("skipped %s: %s", path, error)
    jobs.sort(key=lambda j: (j.job is None, j.job if j.job is not None else 0, str(j.path)))
    return jobs, skipped


def swept(jobs: list[Job]) -> list[str]:
    """The parameters (``seed`` aside) whose values differ between jobs, in the order they first appear."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.parameters if key != SEED))
    return [key for key in keys if len({job.parameters.get(key) for job in jobs}) > 1]


def group(jobs: list[Job]) -> list[Configuration]:
    """The jobs grouped by configuration, in order of their first job."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.configuration, []).append(job)
    return [Configuration(members) for members in groups.values()]


def _number(text: str | None) -> float | str:
    try:
        return float(text)
    except (TypeError, ValueError):
        return str(text)


def _short(value: object) -> object:
    """Metrics to 3 decimals, long numbers typed in overrides (Optuna's draws) to 4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    number = _number(value) if isinstance(value, str) else value
    return f"{number:.4g}" if isinstance(number, float) and len(value) > 8 else value


@dataclass
class Summary:
    """The table of a sweep: one row per configuration, best mean objective first."""

    columns: list[str]
    rows: list[list]
    jobs: list[Job]
    skipped: dict[Path, str]


def summarize(directory: Path, objective: str = "success_rate", confidence: float = 0.95) -> Summary:
    """The configurations of the jobs under ``directory``, ranked by mean ``objective`` (NaN last)."""
    jobs, skipped = collect(directory)
    if not jobs:
        reason = f" ({len(skipped)} skipped: {', '.join(map(str, skipped))})" if skipped else ""
        raise FileNotFoundError(
            f"no readable results.json under {directory}{reason}: is it the dir of a textgym train -m run?"
        )
    known = sorted({m for job in jobs for m in job.metrics})
    if objective not in known:
        raise ValueError(
            f"objective {objective!r} is not among the metrics of any job: choose one of {known}"
        )
    for job in jobs:
        if objective not in job.metrics:
            log.warning("%s has no %r: its configuration ranks last", job.path, objective)
    sweeps = {job.sweep for job in jobs}
    if len(sweeps) > 1:
        log.warning(
            "%s holds the jobs of %d sweeps (%s); summarising them together",
            directory,
            len(sweeps),
            sorted(map(str, sweeps)),
        )
    parameters = swept(jobs)
    others = [
        m for m in dict.fromkeys(m for job in jobs for m in job.metrics) if m not in (objective, "episodes")
    ]
    ranked = sorted(group(jobs), key=lambda c: (math.isnan(c.mean(objective)), -c.mean(objective)))
    columns = ["jobs", *parameters, "seeds", objective, f"{objective}_low", f"{objective}_high", *others]
    rows = [
        [
            " ".join(str(job.job) for job in c.jobs),
            *(c.jobs[0].parameters.get(p) for p in parameters),
            len(c.jobs),
            c.mean(objective),
            *c.interval(objective, confidence),
            *(c.mean(m) for m in others),
        ]
        for c in ranked
    ]
    return Summary(columns, rows, jobs, skipped)


def write_summary(directory: Path, objective: str = "success_rate") -> str:
    """Write ``summary.csv``, ``summary.md`` and ``summary.png`` into ``directory``; return the Markdown."""
    summary = summarize(directory, objective)
    write_csv(directory / "summary.csv", summary.columns, summary.rows)
    shown = [[_short(v) for v in row] for row in summary.rows]
    configurations = len(summary.rows)
    sweep_ids = sorted({str(job.sweep) for job in summary.jobs})
    text = (
        f"# Sweep {', '.join(sweep_ids)}: {len(summary.jobs)} jobs in {configurations} configurations, "
        f"best mean {objective} first\n\nMeans over each configuration's seeds; `{objective}_low`/`_high`: "
        f"a 95% t interval over seeds (none for a single seed). NaN ranks last.\n\n"
        f"{markdown_table(summary.columns, shown)}\n"
    )
    if summary.skipped:
        text += "\nSkipped (not readable):\n\n" + "".join(
            f"- `{p}`: {why}\n" for p, why in summary.skipped.items()
        )
    (directory / "summary.md").write_text(text)
    parameters = swept(summary.jobs)
    if parameters:
        values = {p: [_number(job.parameters.get(p)) for job in summary.jobs] for p in parameters}
        objectives = [job.metrics.get(objective, math.nan) for job in summary.jobs]
        plot_objective(values, objectives, objective, directory / "summary.png")
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="textgym sweep-summary", description=__doc__.splitlines()[0])
    parser.add_argument(
        "directory", type=Path, help="the sweep dir of a textgym train -m run (hydra.sweep.dir)"
    )
    parser.add_argument(
        "--objective", default="success_rate", help="the metric to rank by (default: success_rate)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s")
    try:
        text = write_summary(args.directory, args.objective)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    print(f"{text}\nsummary.csv, summary.md and summary.png in {args.directory}")  # noqa: T201
    return 0
