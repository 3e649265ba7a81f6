"""``textgym train``: one training run (or a ``-m`` sweep of them) from the Hydra configs in ``conf/``."""

from __future__ import annotations

import json
import logging
import os
import sys
from functools import partial
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from textgym.algorithms.base import Interrupted
from textgym.algorithms.callbacks import EvalHistory, LogMetrics, LogProgress, LogTranscripts, ProgressBar, interactive
from textgym.algorithms.evaluation import EVAL_SEED_OFFSET, evaluate, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.algorithms.self_play import OpponentPool, SelfPlay, SelfPlayConfig
from textgym.factory import make_algorithm, make_env, make_policy, store_schemas
from textgym.loggers import NullLogger, make_logger
from textgym.plots import LogValueCalibration, plot_learning_curve
from textgym.settings import check_reward, positive_int, user_errors, write_atomically

log = logging.getLogger(__name__)
store_schemas()


@hydra.main(config_path="pkg://textgym.conf", config_name="config", version_base="1.3")
def train(cfg: DictConfig) -> float:
    """Train, evaluate, write ``config.yaml``, ``results.json`` and the policy; return the success rate.

    ``results.json`` holds the final evaluation's ``metrics`` and, on envs that report policy violations,
    ``violations_by_rule``: the share of episodes that broke each rule.

    Every setting is checked, and the env, policy and algorithm built, before anything is written: a bad
    one is a one-line error naming the key (``HYDRA_FULL_ERROR=1`` shows the traceback). Checkpoints go
    to ``<output dir>/checkpoints``; with ``resume=true`` the run continues from the newest one there, and
    a job whose ``results.json`` exists is not run again (rerun a killed multirun with the same
    ``hydra.sweep.dir``). SIGTERM / SIGINT stop at the next safe point with a checkpoint and exit 143 / 130.

    In a multirun, every job's W&B group and ``results.json["sweep"]["id"]`` are the sweep's id (its
    dir), which ``textgym sweep-summary`` groups by.

    Under ``accelerate launch`` (several processes, ``RANK``/``WORLD_SIZE`` set), every process trains and
    only rank 0 logs, saves and evaluates; the processes must share ``hydra.run.dir``.
    """
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    resume = cfg.resume or _requeued()
    if resume and (finished := _finished_results(out)) is not None:
        log.info("resume: %s already finished, not run again", out)
        return finished
    with user_errors():
        main_process = _check_processes(hc.overrides.hydra)
        eval_episodes, eval_num_envs = check_eval(cfg.eval)
        reward = check_reward(cfg.reward)
        env_fn = partial(make_env, cfg.env, reward)  # the final evaluation's: against the env's own opponent
        env_fn().close()  # the env's id and kwargs are sound
        algorithm = make_algorithm(cfg.algorithm, seed=cfg.seed, checkpoint_dir=out / "checkpoints", resume=resume)
        policy = make_policy(cfg.policy)
        algorithm.check_policy(policy)
        train_env_fn, self_play = env_fn, []
        if cfg.self_play.enabled:
            pool = OpponentPool(SelfPlayConfig(**{k: v for k, v in cfg.self_play.items() if k != "enabled"}), seed=cfg.seed)
            train_env_fn = partial(make_env, cfg.env, reward, opponent=pool)
            train_env_fn().close()  # a TypeError naming 'opponent' unless the env has an opponent's seat
            self_play = [SelfPlay(pool, policy, out / "self_play")]
            self_play[0].snapshot(0)  # the opponent's seat is filled before the algorithm probes its envs

    multirun = hc.mode == RunMode.MULTIRUN
    job = OmegaConf.select(hc, "job.num", default=None)
    sweep_group = Path(hc.sweep.dir).as_posix().replace("/", "_") if multirun else None
    if not main_process:
        logger = NullLogger()
    else:
        OmegaConf.save(cfg, out / "config.yaml", resolve=True)
        logger = make_logger(
            OmegaConf.to_object(cfg.logger),
            OmegaConf.to_container(cfg, resolve=True),
            out,
            name=f"{cfg.env.id.split('/')[-1]}-{hc.runtime.choices.algorithm}" + (f"-{job}" if multirun else ""),
            group=sweep_group,
        )
    summary: dict[str, float] = {}
    try:
        history = EvalHistory()
        progress = ProgressBar() if interactive() else LogProgress()
        callbacks = [progress, LogMetrics(logger), LogTranscripts(logger), LogValueCalibration(logger), history, *self_play]
        try:
            algorithm.learn(train_env_fn, policy, callbacks)
        except Interrupted as stop:
            log.warning("%s", stop)
            print(f"textgym train: {stop}", file=sys.stderr)  # noqa: T201 - the one line a killed job leaves
            stop.exit()  # the finally below still finishes the W&B run
        if not main_process:
            return float("nan")
        policy.save(out)
        if history.rows:
            plot_learning_curve(history.rows, out / "learning_curve.png")
            (out / "learning_curve.json").write_text(json.dumps([{"episode": e, **m} for e, m in history.rows], indent=1))

        eval_env = vector_env(env_fn, eval_num_envs)
        ground_truth = GroundTruth.of(eval_env.envs[0])
        optimal = ground_truth.optimal_return if ground_truth else None
        evaluation = evaluate(eval_env, policy, eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET, optimal_return=optimal)
        eval_env.close()
        metrics = evaluation.metrics()
        results = {"env": cfg.env.id, "algorithm": hc.runtime.choices.algorithm, "overrides": list(hc.overrides.task),
                   "sweep": {"id": sweep_group, "job": job} if multirun else None, "metrics": metrics}
        if (by_rule := evaluation.violations_by_rule()) is not None:
            results["violations_by_rule"] = by_rule
            log.info("violations by rule (share of episodes): %s", by_rule or "none")
        write_atomically(out / "results.json", json.dumps(results, indent=2))
        summary = {f"final/{k}": v for k, v in metrics.items()}
    finally:
        logger.finish(summary)  # on every exit path, so the W&B run holds everything logged
    log.info("results in %s", out)
    print(f"final success rate {metrics['success_rate']:.3f} over {metrics['episodes']} episodes ({out})")  # noqa: T201
    return metrics["success_rate"]


def check_eval(node: DictConfig) -> tuple[int, int]:
    """``eval.episodes`` and ``eval.num_envs``, each an integer >= 1."""
    return tuple(positive_int(node, key, f"eval.{key}") for key in ("episodes", "num_envs"))


def _requeued() -> bool:
    """Whether SLURM restarted this job (submitit requeues preempted and timed-out jobs): then it resumes."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def _finished_results(out: Path) -> float | None:
    """The success rate in a finished job's ``results.json``, or None if it has none (or a partial one)."""
    try:
        return float(json.loads((out / "results.json").read_text())["metrics"]["success_rate"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check_processes(hydra_overrides: list[str]) -> bool:
    """Whether this is the main process; several processes need one output dir, given on the command line."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not any(o.startswith("hydra.run.dir=") for o in hydra_overrides):
        raise ValueError(
            "several processes (accelerate launch) must write to one output dir: add hydra.run.dir=<dir> "
            "(each process would otherwise pick its own timestamped dir)"
        )
    return int(os.environ.get("RANK", "0")) == 0
