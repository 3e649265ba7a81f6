"""Self-play: the learning policy trains against a pool of its own earlier snapshots.

The pool sits in the opponent's seat of a two-player env (any object with ``act`` can, see
:class:`textgym.envs.two_player.TwoPlayerEnv`); the :class:`SelfPlay` callback adds a snapshot of the
learning policy to it at the start and every ``snapshot_every`` updates (PPO reports each update
through ``on_log`` with ``ctx.update``)::

    pool = OpponentPool(SelfPlayConfig(pool_size=4, snapshot_every=5), seed=0)
    env_fn = partial(gym.make, "textgym/TicTacToe-v0", opponent=pool, first_player="random")
    PPO(config).learn(env_fn, policy, [SelfPlay(pool, policy, directory="self_play")])

Every env made by ``env_fn`` shares the one pool (in one process: a ``SyncVectorEnv``, as textgym's
``vector_env``; the processes of an ``AsyncVectorEnv`` would each get a copy that never sees new snapshots). A snapshot is the policy written with ``save`` and
read back with its class's ``load`` (the project's checkpoint convention), so any trainable policy
can be pooled; snapshot directories stay on disk, the ``pool_size`` most recent are kept in memory.
Each opponent move is played by a snapshot drawn afresh, so the opponent plays the pool's mixture
at every decision.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from textgym.algorithms.callbacks import Callback, TrainingContext
from textgym.policies.base import Policy

log = logging.getLogger(__name__)


class Sampling(str, Enum):
    """How the pool picks the snapshot that plays a move."""

    uniform = "uniform"
    """Every snapshot in the pool equally likely."""
    latest = "latest"
    """The newest snapshot with probability ``latest_probability``, otherwise uniform over the others."""


@dataclass
class SelfPlayConfig:
    """Self-play's settings."""

    pool_size: int = 5
    """Most snapshots kept; the oldest leaves when a new one comes."""
    snapshot_every: int = 5
    """Updates between snapshots of the learning policy (one is also taken before the first update)."""
    sampling: Sampling = Sampling.uniform
    """``uniform`` over the pool, or ``latest``-biased."""
    latest_probability: float = 0.5
    """With ``sampling=latest``: the chance that the newest snapshot plays the move."""

    def __post_init__(self) -> None:
        self.sampling = Sampling(self.sampling)
        if self.pool_size < 1 or self.snapshot_every < 1:
            raise ValueError(f"pool_size={self.pool_size} and snapshot_every={self.snapshot_every} must be >= 1")
        if not 0.0 <= self.latest_probability <= 1.0:
            raise ValueError(f"latest_probability={self.latest_probability} is a probability: give one in [0, 1]")


class OpponentPool(Policy):
    """Earlier snapshots of a policy, playing the opponent's seat: each ``act`` asks one drawn by ``sampling``."""

    def __init__(self, config: SelfPlayConfig | None = None, seed: int | None = None) -> None:
        self.config = config or SelfPlayConfig()
        self.snapshots: list[tuple[str, Policy]] = []
        self.rng = np.random.default_rng(seed)
        self.plays: dict[str, int] = {}
        """Moves played by each snapshot so far, by name."""

    def add(self, name: str, policy: Policy) -> None:
        """Put a snapshot in the pool (the oldest leaves once there are ``pool_size``)."""
        self.snapshots.append((name, policy))
        del self.snapshots[: -self.config.pool_size]

    def draw(self) -> tuple[str, Policy]:
        """The snapshot that plays the next move."""
        if not self.snapshots:
            raise RuntimeError("the opponent pool is empty: add a snapshot (the SelfPlay callback does at the start)")
        n = len(self.snapshots)
        if self.config.sampling is Sampling.latest and (n == 1 or self.rng.random() < self.config.latest_probability):
            return self.snapshots[-1]
        pool = self.snapshots if self.config.sampling is Sampling.uniform else self.snapshots[:-1]
        return pool[int(self.rng.integers(len(pool)))]

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        name, policy = self.draw()
        self.plays[name] = self.plays.get(name, 0) + len(observations)
        return policy.act(observations, infos)


class SelfPlay(Callback):
    """Snapshots ``policy`` into ``pool`` at the start and every ``pool.config.snapshot_every`` updates.

    Snapshots are written under ``directory`` (``update-000005``, ...) by ``policy.save`` and read back
    by ``type(policy).load``; the directories of snapshots that left the pool are removed.
    """

    def __init__(self, pool: OpponentPool, policy: Policy, directory: str | Path = "self_play") -> None:
        load = getattr(type(policy), "load", None)
        if not callable(load):
            raise TypeError(f"{type(policy).__name__} has no classmethod load(directory): it cannot be snapshotted")
        self.pool, self.policy, self.directory = pool, policy, Path(directory)

    def on_training_start(self, ctx: TrainingContext) -> None:
        if f"update-{ctx.update:06d}" not in {name for name, _ in self.pool.snapshots}:  # none yet, or resumed
            self.snapshot(ctx.update)

    def on_log(self, ctx: TrainingContext, metrics: dict[str, float]) -> None:
        if ctx.update and ctx.update % self.pool.config.snapshot_every == 0:
            self.snapshot(ctx.update)
            metrics_line = ", ".join(f"{name}: {n}" for name, n in self.pool.plays.items())
            log.info("self-play pool after update %d: %s (moves played: %s)", ctx.update,
                     [name for name, _ in self.pool.snapshots], metrics_line)

    def snapshot(self, update: int) -> None:
        """Save the policy as it is now and add the copy to the pool."""
        name = f"update-{update:06d}"
        path = self.directory / name
        path.mkdir(parents=True, exist_ok=True)
        self.policy.save(path)
        kept = {n for n, _ in self.pool.snapshots}
        self.pool.add(name, type(self.policy).load(path))
        for gone in kept - {n for n, _ in self.pool.snapshots}:
            shutil.rmtree(self.directory / gone, ignore_errors=True)
