"""``textgym sweep-summary <multirun dir>``: the ``results.json`` of every job of a sweep in one table.

Rows are jobs, best objective first; columns are the parameters that differ between jobs (read from
each job's overrides) and the metrics. Writes ``summary.csv``, ``summary.md`` and ``summary.png`` (the
objective against each swept parameter) into the sweep dir and prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from textgym.plots import plot_objective
from textgym.tables import markdown_table, write_csv

log = logging.getLogger(__name__)


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
        results = json.loads(path.read_text())
        sweep = results.get("sweep") or {}
        parameters = dict(override.split("=", 1) for override in results["overrides"] if "=" in override)
        return cls(path, sweep.get("id"), sweep.get("job"), parameters, results["metrics"])


def collect(directory: Path) -> list[Job]:
    """Every job under ``directory`` (its ``*/results.json``, at any depth), in job order."""
    jobs = [Job.read(path) for path in sorted(directory.rglob("results.json"))]
    return sorted(jobs, key=lambda j: (j.job is None, j.job if j.job is not None else 0, str(j.path)))


def swept(jobs: list[Job]) -> list[str]:
    """The parameters whose values differ between jobs, in the order they first appear."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.parameters))
    return [key for key in keys if len({job.parameters.get(key) for job in jobs}) > 1]


def _number(text: str | None) -> float | str:
    try:
        return float(text)
    except (TypeError, ValueError):
        return str(text)


def _short(value: object) -> object:
    """Metrics to 3 decimals, long numbers typed in overrides (Optuna's draws) to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.3f}"
    number = _number(value) if isinstance(value, str) else value
    return f"{number:.4g}" if isinstance(number, float) and len(value) > 8 else value


def summarize(directory: Path, objective: str = "success_rate") -> tuple[list[str], list[list], list[Job]]:
    """The table (columns, rows best first) of the jobs under ``directory``, and the jobs."""
    jobs = collect(directory)
    if not jobs:
        raise FileNotFoundError(
            f"no results.json under {directory}: is it the dir of a textgym train -m run?"
        )
    missing = [str(job.path) for job in jobs if objective not in job.metrics]
    if missing:
        raise ValueError(
            f"objective {objective!r} is not among the metrics of {missing[0]}: "
            f"choose one of {sorted(jobs[0].metrics)}"
        )
    sweeps = {job.sweep for job in jobs}
    if len(sweeps) > 1:
        log.warning(
            "%s holds the jobs of %d sweeps (%s); summarising them together",
            directory,
            len(sweeps),
            sorted(map(str, sweeps)),
        )
    parameters = swept(jobs)
    metrics = [objective, *(m for m in jobs[0].metrics if m not in (objective, "episodes"))]
    ranked = sorted(jobs, key=lambda job: -job.metrics[objective])
    columns = ["job", *parameters, *metrics]
    rows = [
        [job.job, *(job.parameters.get(p) for p in parameters), *(job.metrics.get(m) for m in metrics)]
        for job in ranked
    ]
    return columns, rows, jobs


def write_summary(directory: Path, objective: str = "success_rate") -> str:
    """Write ``summary.csv``, ``summary.md`` and ``summary.png`` into ``directory``; return the Markdown."""
    columns, rows, jobs = summarize(directory, objective)
    parameters = swept(jobs)
    write_csv(directory / "summary.csv", columns, rows)
    shown = [[_short(v) for v in row] for row in rows]
    sweep_ids = sorted({str(job.sweep) for job in jobs})
    text = (
        f"# Sweep {', '.join(sweep_ids)}: {len(jobs)} jobs, best {objective} first\n\n"
        f"{markdown_table(columns, shown)}\n"
    )
    (directory / "summary.md").write_text(text)
    if parameters:
        values = {p: [_number(job.parameters.get(p)) for job in jobs] for p in parameters}
        plot_objective(values, [job.metrics[objective] for job in jobs], objective, directory / "summary.png")
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
    try:
        text = write_summary(args.directory, args.objective)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    print(f"{text}\nsummary.csv, summary.md and summary.png in {args.directory}")  # noqa: T201
    return 0
