"""``textgym collect``: record a policy's episodes through the shared evaluation path into a trajectory dataset."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from textgym.algorithms.callbacks import progress_display
from textgym.algorithms.evaluation import evaluate_tasks, vector_env
from textgym.factory import make_env, make_policy, store_schemas

log = logging.getLogger(__name__)
store_schemas()


@hydra.main(config_path="pkg://textgym.conf", config_name="collect", version_base="1.3")
def collect(cfg: DictConfig) -> float:
    """Play ``episodes`` tasks ``trials`` times each, write the dataset to ``output``; return the success rate.
    With an ``expert`` (``policy@expert=oracle``), every turn also records the expert's action in that state."""
    from textgym.algorithms.trajectories import episode_rows, save_trajectories  # datasets: the llm extra

    if min(cfg.episodes, cfg.trials, cfg.num_envs) < 1 or cfg.history < 0:
        raise ValueError("episodes, trials and num_envs must be >= 1 and history >= 0")
    OmegaConf.save(cfg, Path(HydraConfig.get().runtime.output_dir) / "config.yaml", resolve=True)
    env = vector_env(partial(make_env, cfg.env, cfg.reward), min(cfg.num_envs, cfg.episodes * cfg.trials))
    policy = make_policy(cfg.policy)
    expert = make_policy(cfg.expert) if cfg.get("expert") is not None else None
    seeds = [cfg.seed + task for task in range(cfg.episodes) for _ in range(cfg.trials)]
    with progress_display() as progress:
        bar = progress.add_task("collect", total=len(seeds))
        result = evaluate_tasks(env, policy, seeds, on_episode=lambda _: progress.advance(bar), record=True,
                                expert=expert)
    env.close()
    choices = HydraConfig.get().runtime.choices
    metadata = {"env_id": cfg.env.id, "seed": cfg.seed, "policy": choices.policy,
                "expert": choices.get("policy@expert"), "episodes": cfg.episodes, "trials": cfg.trials,
                "history": cfg.history, "config": OmegaConf.to_container(cfg, resolve=True)}
    rows = episode_rows(result.episodes, cfg.env.id, cfg.seed, cfg.history)
    save_trajectories(rows, metadata, cfg.output)
    success = result.metrics()["success_rate"]
    labelled = ""
    if expert is not None:
        agree = sum(row["action"] == row["expert_action"] for row in rows)
        labelled = f"; the policy took the expert's action in {agree} ({agree / len(rows):.3f})"
    print(f"{len(result.episodes)} episodes ({len(rows)} turns, success rate {success:.3f}{labelled}) "  # noqa: T201
          f"in {cfg.output}")
    return success
