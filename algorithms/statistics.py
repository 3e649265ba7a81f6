"""Interval estimates for benchmark results, computed the way rliable does (Agarwal et al., NeurIPS 2021).

* :func:`bootstrap_intervals`: percentile-bootstrap confidence intervals of every metric of one
  evaluation, resampling tasks with replacement (the runs of a task stay together, as they are not
  independent).
* :func:`iqm` and :func:`iqm_interval`: the interquartile mean of scores across runs and envs (the
  mean of the middle 50%, robust to outlier envs) with rliable's stratified bootstrap: runs are
  resampled within each env.

Both use NumPy only; rliable itself would pull in pandas, statsmodels, arch and seaborn.
"""

from __future__ import annotations

import numpy as np

from textgym.algorithms.evaluation import TaskTable


def quantiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` interval of bootstrap ``samples`` (percentile method)."""
    low, high = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def bootstrap_intervals(
    table: TaskTable,
    optimal_return: float | None = None,
    max_k: int = 4,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> dict[str, tuple[float, float]]:
    """A confidence interval for each metric of :meth:`TaskTable.estimates`, from ``resamples`` resamples
    of the tasks.

    All metrics are computed on the same resamples.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    tasks = rng.integers(len(table), size=(resamples, len(table)))
    return {
        name: quantiles(samples, confidence)
        for name, samples in table.estimates(tasks, optimal_return, max_k).items()
    }


def iqm(scores: np.ndarray) -> np.ndarray:
    """The interquartile mean over the last two axes (``(..., runs, envs)``): the mean of the scores
    left after dropping the lowest and highest quarter (``scipy.stats.trim_mean(x, 0.25)``, as in rliable)."""
    flat = np.sort(scores.reshape(*scores.shape[:-2], -1), axis=-1)
    cut = int(0.25 * flat.shape[-1])
    return flat[..., cut : flat.shape[-1] - cut].mean(-1)


def iqm_interval(
    scores: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """A confidence interval of :func:`iqm` of ``scores`` (``(runs, envs)``) by stratified bootstrap:
    each env's runs are resampled with replacement, the envs kept as they are."""
    rng = rng if rng is not None else np.random.default_rng(0)
    runs, envs = scores.shape
    picks = rng.integers(runs, size=(resamples, runs, envs))
    return quantiles(iqm(np.take_along_axis(scores[None], picks, axis=1)), confidence)
