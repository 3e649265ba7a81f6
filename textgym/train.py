"""``textgym train``: one training run (or a ``-m`` sweep of them) from the Hydra configs in ``conf/``."""

from __future__ import annotations

import json
import logging
import os
from functools import partial
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from textgym.algorithms.callbacks import EvalHistory, LogMetrics, LogTranscripts, ProgressBar
from textgym.algorithms.evaluation import EVAL_SEED_OFFSET, evaluate, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.algorithms.value_calibration import LogValueCalibration
from textgym.factory import make_algorithm, make_env, make_policy, store_schemas
from textgym.loggers import NullLogger, make_logger
from textgym.plots import plot_learning_curve

log = logging.getLogger(__name__)
store_schemas()


@hydra.main(config_path="pkg://textgym.conf", config_name="config", version_base="1.3")
def train(cfg: DictConfig) -> float:
    """Train, evaluate, write ``config.yaml``, ``results.json`` and the policy; return the success rate.

    In a multirun, every job's W&B group and ``results.json["sweep"]["id"]`` are the sweep's id (its
    dir), which ``textgym sweep-summary`` groups by.

    Under ``accelerate launch`` (several processes, ``RANK``/``WORLD_SIZE`` set), every process trains and
    only rank 0 logs, saves and evaluates; the processes must share ``hydra.run.dir``.
    """
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    main_process = _check_processes(hc.overrides.hydra)
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

    env_fn = partial(make_env, cfg.env, cfg.reward)
    policy = make_policy(cfg.policy)
    algorithm = make_algorithm(cfg.algorithm, seed=cfg.seed)
    history = EvalHistory()
    callbacks = [ProgressBar(), LogMetrics(logger), LogTranscripts(logger), LogValueCalibration(logger), history]
    algorithm.learn(env_fn, policy, callbacks)
    if not main_process:
        return float("nan")
    policy.save(out)
    if history.rows:
        plot_learning_curve(history.rows, out / "learning_curve.png")
        (out / "learning_curve.json").write_text(json.dumps([{"episode": e, **m} for e, m in history.rows], indent=1))

    eval_env = vector_env(env_fn, cfg.eval.num_envs)
    ground_truth = GroundTruth.of(eval_env.envs[0])
    optimal = ground_truth.optimal_return if ground_truth else None
    metrics = evaluate(eval_env, policy, cfg.eval.episodes, seed=cfg.seed + EVAL_SEED_OFFSET, optimal_return=optimal).metrics()
    eval_env.close()
    results = {"env": cfg.env.id, "algorithm": hc.runtime.choices.algorithm, "overrides": list(hc.overrides.task),
               "sweep": {"id": sweep_group, "job": job} if multirun else None, "metrics": metrics}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    logger.finish({f"final/{k}": v for k, v in metrics.items()})
    log.info("results in %s", out)
    print(f"final success rate {metrics['success_rate']:.3f} over {metrics['episodes']} episodes ({out})")  # noqa: T201
    return metrics["success_rate"]


def _check_processes(hydra_overrides: list[str]) -> bool:
    """Whether this is the main process; several processes need one output dir, given on the command line."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not any(o.startswith("hydra.run.dir=") for o in hydra_overrides):
        raise ValueError(
            "several processes (accelerate launch) must write to one output dir: add hydra.run.dir=<dir> "
            "(each process would otherwise pick its own timestamped dir)"
        )
    return int(os.environ.get("RANK", "0")) == 0
