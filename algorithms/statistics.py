"""Interval estimates and comparisons for benchmark results, never narrower than the data support.

* :func:`bootstrap_intervals`: percentile-bootstrap intervals of every metric of one evaluation,
  resampling tasks with replacement (the trials of a task stay together, as they are not independent).
  Used for returns, lengths and rates per step; an interval has zero width only when every task gave
  the same value (see :func:`no_spread`).
* :func:`success_interval`: a success rate's Wilson score interval at the evaluation's *effective*
  number of trials: repeated trials of one task are correlated, so ``n`` is shrunk by Kish's design
  effect (:func:`effective_trials`). Unlike a bootstrap, it does not collapse at 0/10 or 10/10.
* :func:`iqm` and :func:`iqm_interval`: the interquartile mean of success rates across runs and envs
  (rliable, Agarwal et al., NeurIPS 2021), with a stratified interval that keeps task-level uncertainty
  when there are fewer than 2 seeds (see :func:`iqm_interval`).
* :func:`compare`: rliable's probability of improvement and the paired per-task difference in success
  between two policies on their shared envs, each with a stratified bootstrap interval.
* :func:`minimum_detectable_difference`: how far apart two success rates must be to be told apart.

NumPy and the standard library only; rliable itself would pull in pandas, statsmodels, arch and seaborn.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from textgym.algorithms.evaluation import TaskTable

Interval = tuple[float, float]


def z_value(confidence: float) -> float:
    """The standard normal quantile of a two-sided ``confidence`` interval (1.96 at 0.95)."""
    return NormalDist().inv_cdf((1 + confidence) / 2)


def quantiles(samples: np.ndarray, confidence: float) -> Interval:
    """The central ``confidence`` interval of bootstrap ``samples`` (percentile method)."""
    low, high = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def no_spread(interval: Interval) -> bool:
    """Whether an interval has zero width: it may, only when the data have no spread at all."""
    return interval[0] == interval[1]


def bootstrap_intervals(
    table: TaskTable,
    optimal_return: float | None = None,
    max_k: int = 4,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> dict[str, Interval]:
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


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> Interval:
    """The Wilson score interval of ``successes`` out of ``n`` (``n`` may be an effective, fractional size).

    It stays inside [0, 1] and keeps a width at 0 and at ``n`` successes (10/10 gives [0.72, 1] at 95%).
    """
    if n <= 0:
        raise ValueError(f"a success rate needs n > 0 trials, got n={n}")
    z, p = z_value(confidence), successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))  # p inside despite rounding


def effective_trials(successes: np.ndarray, trials: np.ndarray) -> float:
    """The number of independent trials that the per-task ``successes`` out of ``trials`` are worth.

    Kish's design effect ``1 + (m - 1) rho``, with ``m`` the mean trials per task and ``rho`` the
    within-task correlation of success (one-way ANOVA estimate, clipped to [0, 1]): a policy that
    repeats itself on a task (``rho = 1``) has as many effective trials as tasks; independent trials
    (``rho = 0``) count in full. With no variance to estimate ``rho`` from (every episode succeeded, or
    none did), or a single task, the conservative ``rho = 1``.
    """
    k, total = len(trials), float(trials.sum())
    if total == k:  # one trial per task: nothing is shared
        return total
    rates = successes / trials
    overall = successes.sum() / total
    between = float((trials * (rates - overall) ** 2).sum()) / (k - 1) if k > 1 else 0.0
    within = float((successes * (1 - rates)).sum()) / (total - k)
    m0 = (total - float((trials**2).sum()) / total) / (k - 1) if k > 1 else 0.0
    denominator = between + (m0 - 1) * within
    rho = 1.0 if k == 1 or denominator <= 0 else min(1.0, max(0.0, (between - within) / denominator))
    return total / (1 + (total / k - 1) * rho)


def success_interval(successes: np.ndarray, trials: np.ndarray, confidence: float = 0.95) -> Interval:
    """The Wilson interval of the success rate of per-task ``successes`` out of ``trials`` at their
    :func:`effective_trials`."""
    n = effective_trials(successes, trials)
    return wilson_interval(float(successes.sum()) / float(trials.sum()) * n, n, confidence)


def iqm(scores: np.ndarray) -> np.ndarray:
    """The interquartile mean over the last two axes (``(..., runs, envs)``): the mean of the scores
    left after dropping the lowest and highest quarter (``scipy.stats.trim_mean(x, 0.25)``, as in rliable)."""
    flat = np.sort(scores.reshape(*scores.shape[:-2], -1), axis=-1)
    cut = int(0.25 * flat.shape[-1])
    return flat[..., cut : flat.shape[-1] - cut].mean(-1)


def iqm_interval(
    rates: np.ndarray,
    effective: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> Interval:
    """An interval of :func:`iqm` of the success ``rates`` of runs (``(runs, envs)``), each worth
    ``effective`` independent trials (:func:`effective_trials`), stratified by env.

    Each resample redraws every run's success rate from its Jeffreys posterior,
    ``Beta(p n + 1/2, (1 - p) n + 1/2)`` at its effective size ``n``: the task-level uncertainty, which a
    single seed leaves as the only one (a nonparametric resample of 10 successes in 10 tasks is 10 every
    time, which is how ``0.90 [0.90, 0.90]`` came about). With 2 or more runs per env, the runs are also
    resampled within each env (rliable's stratified bootstrap), so that run-to-run variation counts too.
    The interval is widened to hold the IQM itself, as Jeffreys intervals reach 1 at ``n`` of ``n`` (and 0
    at none).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    runs, envs = rates.shape
    picks = (
        rng.integers(runs, size=(resamples, runs, envs)) if runs > 1 else np.zeros((resamples, 1, envs), int)
    )
    p = np.take_along_axis(rates[None], picks, axis=1)
    n = np.take_along_axis(effective[None], picks, axis=1)
    low, high = quantiles(iqm(rng.beta(p * n + 0.5, (1 - p) * n + 0.5)), confidence)
    point = float(iqm(rates))
    return min(low, point), max(high, point)


def probability_of_improvement(x: np.ndarray, y: np.ndarray, chunk: int = 4_000_000) -> np.ndarray:
    """``P(X > Y) + P(X = Y) / 2`` between the scores in the last axis of ``x`` and of ``y`` (rows of
    resamples in front): the Mann-Whitney statistic over ``n * m``, rliable's probability of improvement
    on one env. Rows are processed ``chunk`` comparisons at a time to bound memory."""
    x, y = np.atleast_2d(x), np.atleast_2d(y)
    rows = max(1, chunk // (x.shape[-1] * y.shape[-1]))
    out = []
    for start in range(0, len(x), rows):
        a, b = x[start : start + rows, :, None], y[start : start + rows, None, :]
        out.append((a > b).mean((-1, -2)) + 0.5 * (a == b).mean((-1, -2)))
    return np.concatenate(out)


@dataclass
class Comparison:
    """Policy A against policy B, on one env or on all their shared envs."""

    improvement: float
    """rliable's probability of improvement: the chance that A's success on a random task beats B's on
    another (ties count half), averaged over envs; 0.5 when they are alike."""
    improvement_interval: Interval
    difference: float
    """The mean over envs of the paired per-task difference in success rate, A minus B."""
    difference_interval: Interval

    @property
    def distinguishable(self) -> bool:
        """Whether the probability-of-improvement interval excludes 0.5 (rliable's criterion)."""
        low, high = self.improvement_interval
        return not low <= 0.5 <= high


def compare(
    a: Sequence[np.ndarray],
    b: Sequence[np.ndarray],
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> tuple[list[Comparison], Comparison]:
    """Compare two policies from their per-task success rates on each shared env (``a[e][t]`` and
    ``b[e][t]``: the same task ``t``); return one :class:`Comparison` per env and one over all of them.

    The intervals are a stratified bootstrap of the tasks: each env's tasks are resampled with the same
    indices for both policies (the tasks are shared), and every statistic is computed on the same
    resamples.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    point_poi, point_diff, sampled_poi, sampled_diff = [], [], [], []
    for x, y in zip(a, b):
        tasks = rng.integers(len(x), size=(resamples, len(x)))
        point_poi.append(float(probability_of_improvement(x, y)[0]))
        point_diff.append(float(np.mean(x - y)))
        sampled_poi.append(probability_of_improvement(x[tasks], y[tasks]))
        sampled_diff.append((x[tasks] - y[tasks]).mean(-1))
    per_env = [
        Comparison(poi, quantiles(poi_samples, confidence), diff, quantiles(diff_samples, confidence))
        for poi, diff, poi_samples, diff_samples in zip(point_poi, point_diff, sampled_poi, sampled_diff)
    ]
    overall = Comparison(
        float(np.mean(point_poi)),
        quantiles(np.mean(sampled_poi, axis=0), confidence),
        float(np.mean(point_diff)),
        quantiles(np.mean(sampled_diff, axis=0), confidence),
    )
    return per_env, overall


def minimum_detectable_difference(n: float, confidence: float = 0.95, power: float = 0.8) -> float:
    """The smallest difference between two success rates, each measured on ``n`` independent trials,
    that a two-sided test at ``confidence`` detects with probability ``power``, at the worst case
    ``p = 0.5``: ``(z_(1+c)/2 + z_power) * sqrt(2 * 0.25 / n)`` (0.28 at n = 50, 0.089 at n = 500)."""
    return (z_value(confidence) + NormalDist().inv_cdf(power)) * math.sqrt(0.5 / n)


@functools.lru_cache(maxsize=256)
def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (``p > 0.5``) of Student's t with ``df`` degrees of freedom (12.71 at 0.975 and
    df = 1, 2.23 at df = 10), from its density by Simpson's rule and bisection: no SciPy needed."""
    if not 0.5 < p < 1 or df <= 0:
        raise ValueError(f"need 0.5 < p ({p}) < 1 and df ({df}) > 0")
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(t: float) -> float:
        x = np.linspace(0.0, t, 2001)
        density = np.exp(log_scale - (df + 1) / 2 * np.log1p(x * x / df))
        weights = np.ones(len(x))
        weights[1:-1:2], weights[2:-1:2] = 4, 2
        return 0.5 + float((weights * density).sum()) * (x[1] - x[0]) / 3

    low, high = 0.0, 1.0
    while cdf(high) < p:
        low, high = high, high * 4
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < p else (low, middle)
    return (low + high) / 2


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval | None:
    """The t interval of the mean of a few independent ``values`` (e.g. one per seed); None for fewer
    than 2. A NaN among them makes the interval NaN."""
    if len(values) < 2:
        return None
    array = np.asarray(values, dtype=float)
    half = (
        student_t_quantile((1 + confidence) / 2, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array))
    )
    return float(array.mean() - half), float(array.mean() + half)
