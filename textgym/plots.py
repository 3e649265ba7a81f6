"""Figures a run writes next to its results."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

from textgym.algorithms.callbacks import Callback, Logger, TrainingContext
from textgym.algorithms.value_calibration import ValueCalibration

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend


def plot_learning_curve(rows: list[tuple[int, dict[str, float]]], path: Path) -> None:
    """Success rate, and where known ``q_error`` and ``regret``, against training episodes."""
    keys = [k for k in ("success_rate", "q_error", "regret") if rows and k in rows[0][1]]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
    episodes = [episode for episode, _ in rows]
    for ax, key in zip(axes[0], keys):
        ax.plot(episodes, [metrics[key] for _, metrics in rows], marker="o", markersize=3)
        ax.set_xlabel("training episodes")
        ax.set_title({"q_error": "max |Q - Q*|", "regret": "regret V*(start) - V(start)"}.get(key, key))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save(fig: plt.Figure, path: Path, data: object) -> None:
    """Write ``fig`` as a PNG whose ``Description`` text chunk holds the plotted numbers as JSON."""
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Description": json.dumps(data)})
    plt.close(fig)


def plot_scores(scores: dict[str, dict[str, tuple[float, float, float]]], path: Path, ylabel: str) -> None:
    """Grouped bars: one group per key of each series (e.g. envs), one bar per series (e.g. policies).

    ``scores[series][group] = (estimate, low, high)``; the interval is drawn as an error bar.
    """
    groups = list(dict.fromkeys(group for series in scores.values() for group in series))
    width = 0.8 / max(len(scores), 1)
    fig, ax = plt.subplots(figsize=(min(max(6.0, 0.25 * len(groups) * len(scores) + 2), 16), 4))
    for j, (name, series) in enumerate(scores.items()):
        xs = [i + (j - (len(scores) - 1) / 2) * width for i, group in enumerate(groups) if group in series]
        values = [series[group] for group in groups if group in series]
        estimates = [v[0] for v in values]
        errors = [[v[0] - v[1] for v in values], [v[2] - v[0] for v in values]]
        ax.bar(xs, estimates, width, yerr=errors, capsize=2, label=name)
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save(fig, path, scores)


def plot_learning_curves(curves: dict[str, dict[str, list[list[tuple[int, float]]]]], path: Path) -> None:
    """Success rate against training episodes: one panel per env, one colour per policy, one line per run.

    ``curves[env][policy]`` lists the runs (seeds), each a list of ``(episode, success_rate)`` points.
    """
    columns = min(len(curves), 4)
    rows = -(-len(curves) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.5 * rows), squeeze=False)
    policies = dict.fromkeys(policy for by_policy in curves.values() for policy in by_policy)
    colours = {policy: f"C{j}" for j, policy in enumerate(policies)}
    for ax in axes.flat[len(curves):]:
        ax.set_visible(False)
    for ax, (env, policies) in zip(axes.flat, curves.items()):
        for policy, runs in policies.items():
            for r, run in enumerate(runs):
                label = policy if r == 0 else None
                ax.plot(*zip(*run), color=colours[policy], alpha=0.8, marker="o", markersize=2, label=label)
        ax.set_title(env)
        ax.set_xlabel("training episodes")
        ax.set_ylabel("success rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    save(fig, path, curves)


def plot_objective(
    values: dict[str, list[float | str]], objective: list[float], name: str, path: Path
) -> None:
    """The objective of each run against each swept parameter (one panel each), with the mean per value.

    ``values[parameter][i]`` is run ``i``'s value; numbers go on a numeric axis, other values in order.
    """
    fig, axes = plt.subplots(1, len(values), figsize=(4 * len(values), 3.5), squeeze=False)
    for ax, (parameter, column) in zip(axes[0], values.items()):
        numeric = all(isinstance(v, float) for v in column)
        levels = sorted(set(column)) if numeric else list(dict.fromkeys(column))
        position = {level: level if numeric else i for i, level in enumerate(levels)}
        ax.scatter([position[v] for v in column], objective, alpha=0.6)
        means = [np.mean([o for v, o in zip(column, objective) if v == level]) for level in levels]
        xs = [position[level] for level in levels]
        ax.plot(xs, means, color="C1", marker="_", markersize=14, label="mean")
        if not numeric:
            ax.set_xticks(range(len(levels)), [str(level) for level in levels])
        ax.set_xlabel(parameter)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    save(fig, path, {"objective": objective, "values": values})


def calibration_figure(report: ValueCalibration, title: str = "value head calibration") -> plt.Figure:
    """Binned mean true value against mean prediction (for ``V*`` and ``V^pi``), with the diagonal."""
    fig, ax = plt.subplots(figsize=(4.5, 4.0))
    curves = {"V*": report.optimal, "V^pi": report.policy}
    for name, c in curves.items():
        if c is not None:
            ax.plot(c.predicted, c.true, marker="o", label=f"{name}: MAE {c.mae:.3f}, r {c.correlation:.2f}")
    low = min(min(c.predicted.min(), c.true.min()) for c in curves.values() if c is not None)
    high = max(max(c.predicted.max(), c.true.max()) for c in curves.values() if c is not None)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="calibrated")
    ax.set_xlabel("value head (mean in bin)")
    ax.set_ylabel("true value (mean in bin)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


class LogValueCalibration(Callback):
    """Logs each evaluation's calibration figure (``ctx.value_calibration``) as ``eval/value_calibration``.

    The scalar ``eval/value_*`` metrics go through :class:`~textgym.algorithms.callbacks.LogMetrics`.
    """

    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def on_eval(self, ctx: TrainingContext) -> None:
        if ctx.value_calibration is None:
            return
        import wandb  # only runs with a calibration pay for the import

        fig = calibration_figure(ctx.value_calibration, f"value head after update {ctx.update}")
        self.logger.log({"eval/value_calibration": wandb.Image(fig)}, step=ctx.episode)
        plt.close(fig)
