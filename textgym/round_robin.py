"""The round robin of ``textgym benchmark``: on each two-player env, its policies rated against each other.

After the grid, every env of the benchmark whose env is a :class:`~textgym.envs.two_player.TwoPlayerEnv`
gets a round robin (``textgym.tournament.run_tournament``: every ordered pair in both seats and move
orders, OpenSkill ratings with their uncertainty, win/draw/loss rates, exact exploitability where the
game is small enough) among the benchmark's policies, each as the grid obtained it, plus the env's own
scripted opponent (``env.kwargs.opponent``, named ``scripted_<name>``):

* a policy that reads the env's hidden state (``oracle``) cannot sit in the opponent's seat; the game's
  optimal (equilibrium) player stands in for it (:data:`STAND_INS`);
* a policy loaded from ``setup.<name>.checkpoint`` is loaded from that directory (``{seed}``: the first seed);
* a policy trained on the fly is the one trained on the first seed, saved by the grid as a ``textgym
  train``-style run dir in ``trained/<env>/<name>/`` of the benchmark's output dir (:meth:`RoundRobins.keep`);
* an LLM policy borrows the benchmark's one base model (:class:`~textgym.factory.BaseModels`).

A policy whose grid cell on the env failed is left out of that env's round robin.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator
from omegaconf import DictConfig, OmegaConf

from textgym.envs.two_player import TwoPlayerEnv
from textgym.factory import BaseModels, make_env
from textgym.leaderboard import Cell
from textgym.policies.base import Policy
from textgym.tables import write_csv
from textgym.tournament import (
    OPTIMAL, Entrant, Match, Standing, TournamentConfig, match_rows, run_tournament, standing_rows,
)

if TYPE_CHECKING:
    from textgym.benchmark import BenchmarkConfig

log = logging.getLogger(__name__)

STAND_INS = {"oracle": OPTIMAL}
"""Policy configs that read the env's hidden state -> the scripted player of the game that takes their place."""


@dataclass
class RoundRobinConfig:
    """The benchmark's round robin on its two-player envs (``round_robin`` in ``conf/benchmark.yaml``)."""

    enabled: bool = True
    """Play it after the grid; false: the benchmark is the grid alone."""
    games: int = 10
    """Games per ordered pair of players and move order (4 x games between two players)."""
    exploitability_samples: int = 16
    """Answers asked in each information state to tabulate the strategy of a policy that does not know its
    action probabilities (one that does, as ``random``, ``tabular`` and a score-mode LLM, is tabulated from
    them once)."""
    max_information_states: int = 20_000
    """Exploitability is n/a for policies on games with more information states than this in a seat
    (Connect Four has ~80k; an LLM policy scores one prompt per state)."""

    def __post_init__(self) -> None:
        for name in ("games", "exploitability_samples", "max_information_states"):
            if getattr(self, name) < 1:
                raise ValueError(f"round_robin.{name}={getattr(self, name)} must be >= 1")


@dataclass
class RoundRobin:
    """The outcome of one env's round robin."""

    env: str
    standings: list[Standing]
    matches: list[Match]
    seconds: float


def is_two_player(env_id: str) -> bool:
    """Whether the registered env ``env_id`` (``module:`` prefix allowed) is a :class:`TwoPlayerEnv`."""
    module, _, name = env_id.rpartition(":")
    if module:
        importlib.import_module(module)
    entry_point = gym.spec(name).entry_point
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    return isinstance(creator, type) and issubclass(creator, TwoPlayerEnv)


class RoundRobins:
    """The round robins of one benchmark run: which envs get one, the players, and playing them."""

    def __init__(self, cfg: BenchmarkConfig, runs: dict[str, DictConfig], out: Path, models: BaseModels,
                 searchpath: list[str]) -> None:
        """``runs``: each env's run config (as the grid composes it), by env config name."""
        self.cfg, self.out, self.models, self.searchpath = cfg, out, models, searchpath
        self.runs = {env: run for env, run in runs.items() if is_two_player(run.env.id)} if cfg.round_robin.enabled else {}

    @property
    def envs(self) -> list[str]:
        """The benchmark's envs that get a round robin."""
        return list(self.runs)

    def trained_dir(self, env: str, policy: str) -> Path:
        return self.out / "trained" / env / policy

    def keep(self, cell: Cell, seed: int, run: DictConfig, policy: Policy) -> None:
        """The grid's hook for each policy it obtained: a policy trained on the fly for a round robin's env is
        saved with its run config (the first seed's), as ``textgym train`` saves one, to play there."""
        setup = self.cfg.setup.get(cell.policy)
        trained = setup is not None and setup.algorithm is not None and setup.checkpoint is None
        if not trained or cell.env not in self.runs or seed != self.cfg.seeds[0]:
            return
        directory = self.trained_dir(cell.env, cell.policy)
        directory.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(run, directory / "config.yaml", resolve=True)
        policy.save(directory)

    def entrant(self, env: str, name: str) -> Entrant:
        """How the benchmark's policy ``name`` plays in ``env``'s round robin (see the module docstring)."""
        setup = self.cfg.setup.get(name)
        config = (setup.policy if setup else None) or name
        if config in STAND_INS:
            return Entrant(scripted=STAND_INS[config])
        if setup is None:
            return Entrant(policy=config)
        if setup.checkpoint is not None:
            overrides = [f"algorithm={setup.algorithm}"] if setup.algorithm else []
            return Entrant(policy=config, checkpoint=setup.checkpoint.format(env=env, seed=self.cfg.seeds[0]),
                           overrides=[*overrides, *setup.overrides])
        if setup.algorithm is not None:
            return Entrant(checkpoint=str(self.trained_dir(env, name)))
        return Entrant(policy=config, overrides=list(setup.overrides))

    def players(self, env: str, failed: set[str]) -> dict[str, Entrant]:
        """The players of ``env``'s round robin: the benchmark's policies less those in ``failed``, and the
        env's scripted opponent."""
        players = {name: self.entrant(env, name) for name in self.cfg.policies if name not in failed}
        opponent = self.runs[env].env.kwargs.get("opponent")
        if isinstance(opponent, str) and "/" not in opponent:  # a scripted player of the game, not a policy
            players[f"scripted_{opponent}"] = Entrant(scripted=opponent)
        return players

    def tournament(self, env: str, players: dict[str, Entrant]) -> TournamentConfig:
        """The tournament config of ``env``'s round robin among ``players``."""
        rr = self.cfg.round_robin
        return TournamentConfig(game=env, players=players, games=rr.games, seed=self.cfg.seeds[0],
                                num_envs=self.cfg.num_envs, exploitability_samples=rr.exploitability_samples,
                                max_information_states=rr.max_information_states, overrides=list(self.cfg.overrides))

    def validate(self) -> None:
        """Check each round robin's config and make its env once (an ``env.kwargs.opponent`` path that holds no
        policy is an error here), before anything runs."""
        for env, run in self.runs.items():
            if len(players := self.players(env, set())) >= 2:
                self.tournament(env, players)
            make_env(run.env, run.reward).close()

    def play(self, env: str, cells: list[Cell]) -> RoundRobin | None:
        """``env``'s round robin among the policies whose cell there ran; None if fewer than two players."""
        failed = {cell.policy for cell in cells if cell.env == env and cell.error}
        if failed:
            log.warning("round robin on %s: %s left out (their cells failed)", env, sorted(failed))
        players = self.players(env, failed)
        if len(players) < 2:
            log.warning("round robin on %s not played: it needs two players, has %s", env, list(players))
            return None
        started, cpu = time.perf_counter(), time.process_time()
        standings, matches = run_tournament(self.tournament(env, players), self.searchpath, self.models)
        seconds = time.perf_counter() - started
        log.info("round robin on %s: %d players, %d games in %.1f s (%.1f CPU-s)", env, len(standings),
                 sum(sum(m.outcomes.values()) for m in matches), seconds, time.process_time() - cpu)
        return RoundRobin(env, standings, matches, seconds)

    def write(self, result: RoundRobin) -> None:
        """``ratings_<env>.csv`` (one row per player) and ``matches_<env>.csv`` in the benchmark's output dir."""
        write_csv(self.out / f"ratings_{result.env}.csv", *standing_rows(result.standings))
        write_csv(self.out / f"matches_{result.env}.csv", *match_rows(result.matches))
