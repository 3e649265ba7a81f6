"""``textgym tournament``: a round robin of policies on a two-player env, with OpenSkill ratings and exploitability.

Every player meets every other in both seats: for each ordered pair (A, B) and each move order, A plays
the agent's seat of the env's single-agent view and B the opponent's seat, ``games`` games through the
shared evaluation path (``evaluate_tasks``). A player is a policy config (``conf/policy/``, built as
``textgym train`` would), a policy trained by a ``textgym train`` run (its output dir), a checkpoint that
a policy config's class loads, or a scripted player of the game (``optimal`` names the game's equilibrium
player). ``textgym benchmark`` plays the same round robin among its policies (``textgym.round_robin``). Each game updates the players'
OpenSkill (Plackett-Luce) ratings: ``mu`` and its uncertainty ``sigma``; ``ordinal`` is ``mu - 3 sigma``.

Exploitability, where the game is small enough to enumerate: the player's strategy in the opponent's
seat is tabulated over its information states (a scripted player's exactly; a policy's from its
exact action probabilities where it knows them (``random``, ``tabular``, a score-mode LLM), else from
``exploitability_samples`` answers per state, exact for deterministic policies), the exact best
response to it is solved from the env's ``tabular_mdp()``, and the exploitability is how much more the
best response earns than the game's value, averaged over both move orders (0 for an equilibrium).

Outputs, in the run dir: ``ratings.csv`` (one row per player), ``matches.csv`` (one row per ordered pair
and move order), ``tournament.md``, ``config.yaml``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import hydra
import numpy as np
from hydra import compose
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from openskill.models import PlackettLuce

from textgym.algorithms.evaluation import EVAL_SEED_OFFSET, evaluate_tasks, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.envs.base import InvalidAction
from textgym.envs.two_player import Distribution, Game, TwoPlayerEnv, sample
from textgym.factory import BaseModels, load_checkpoint, load_policy, make_env, make_policy, store_schemas
from textgym.policies.base import Policy
from textgym.tables import markdown_table, write_csv

log = logging.getLogger(__name__)

OPTIMAL = "optimal"
"""The ``scripted`` name that stands for the game's optimal player (``Game.optimal``)."""
OUTCOMES = ("win", "draw", "loss")
FLIP = {"win": "loss", "draw": "draw", "loss": "win"}
"""An outcome as the other player sees it."""


@dataclass
class Entrant:
    """How one player of the tournament is obtained: ``scripted`` alone, or ``policy`` and/or ``checkpoint``."""

    policy: str | None = None
    """A config of the ``policy`` group: built as ``textgym train`` builds it (untrained), or, with
    ``checkpoint``, the config whose class loads the checkpoint."""
    checkpoint: str | None = None
    """A directory the policy's class ``load(directory)`` reads; without ``policy``, the output dir of a
    ``textgym train`` run, whose ``config.yaml`` says which policy class loads it."""
    scripted: str | None = None
    """A scripted player of the game (e.g. ``minimax``, ``random``), or ``optimal`` for its equilibrium player."""
    overrides: list[str] = field(default_factory=list)
    """Overrides of the policy's run config, e.g. ``[policy.greedy=true]``."""

    def __post_init__(self) -> None:
        given = [name for name in ("policy", "checkpoint", "scripted") if getattr(self, name) is not None]
        if not given or (self.scripted is not None and len(given) > 1):
            raise ValueError(f"a player needs scripted alone, or policy and/or checkpoint; got {given or 'none'}")


@dataclass
class TournamentConfig:
    """``textgym tournament``'s config (``conf/tournament.yaml``)."""

    game: str = "tic_tac_toe"
    """A config of the ``env`` group whose env is a two-player game (``tic_tac_toe``, ``kuhn_poker``, ...)."""
    players: dict[str, Any] = field(default_factory=lambda: {"random": {"policy": "random"},
                                                             OPTIMAL: {"scripted": OPTIMAL}})
    """Name -> the fields of an :class:`Entrant` (``+players.q={checkpoint: runs/q}`` adds one)."""
    games: int = 50
    """Games per ordered pair of players and move order (so 4 x games between two players)."""
    seed: int = 0
    """Seeds the policies, the games' tasks and the order in which games update the ratings."""
    num_envs: int = 8
    """Vector-env slots stepped together."""
    exploitability_samples: int = 16
    """Answers asked in each information state to tabulate the strategy of a policy that does not know its
    action probabilities (one that does, as ``random``, ``tabular`` and a score-mode LLM, is tabulated from
    them once)."""
    max_information_states: int = 20_000
    """Exploitability is skipped (n/a) for games with more information states than this in a seat."""
    overrides: list[str] = field(default_factory=list)
    """Overrides of every run config, e.g. ``[env.kwargs.opponent_epsilon=0.1]``."""

    def __post_init__(self) -> None:
        for name, entry in self.players.items():
            try:
                self.players[name] = entry if isinstance(entry, Entrant) else Entrant(**entry)
            except TypeError as error:
                known = [f.name for f in fields(Entrant)]
                raise ValueError(f"players.{name}: {error}; a player has the fields {known}") from None
        if len(self.players) < 2:
            raise ValueError(f"a round robin needs at least two players, got {list(self.players)}")
        if min(self.games, self.num_envs, self.exploitability_samples) < 1:
            raise ValueError("games, num_envs and exploitability_samples must be >= 1")


# ---- players ------------------------------------------------------------------------------------------


class ScriptedPlayer(Policy):
    """A scripted player of the game in the agent's seat (privileged: it reads the env's state, as the oracle does)."""

    def __init__(self, name: str, seed: int) -> None:
        self.name, self.rng, self.env = name, np.random.default_rng(seed), None

    def bind(self, env: gym.vector.VectorEnv) -> None:
        self.env = env

    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        if self.env is None:
            raise RuntimeError("ScriptedPlayer.act() before bind(env): it reads the game's state")
        games, states = self.env.get_attr("game"), self.env.get_attr("state")
        return [sample(game.scripted[self.name].policy(game, state, 0), self.rng) if info["valid_actions"] else ""
                for game, state, info in zip(games, states, infos)]


@dataclass
class Player:
    """A player as both seats see it."""

    name: str
    agent: Policy
    """What plays the agent's seat."""
    opponent: str | Policy
    """What plays the opponent's seat (a scripted player's name, or the policy itself)."""


def make_player(name: str, entrant: Entrant, game: Game, run: DictConfig, seed: int,
                models: BaseModels | None = None) -> Player:
    """The player an :class:`Entrant` describes (``run`` is its run config); an LLM policy borrows its base
    model from ``models`` if given (:class:`~textgym.factory.BaseModels`), else loads its own."""
    if entrant.scripted is not None:
        scripted = game.optimal if entrant.scripted == OPTIMAL else entrant.scripted
        if scripted not in game.scripted:
            raise ValueError(f"players.{name}: scripted={entrant.scripted!r} is not a player of {game.name}; use "
                             f"one of {[OPTIMAL, *game.scripted]}")
        return Player(name, ScriptedPlayer(scripted, seed), scripted)
    if entrant.checkpoint is None:
        policy = make_policy(run.policy, models)
    elif entrant.policy is None:
        policy = load_checkpoint(entrant.checkpoint, models)
    else:
        policy = load_policy(run.policy, Path(entrant.checkpoint), models)
    return Player(name, policy, policy)


# ---- the round robin ----------------------------------------------------------------------------------


@dataclass
class Match:
    """The games of one ordered pair in one move order."""

    agent: str
    opponent: str
    first: str
    """Who moved first: ``agent`` or ``opponent``."""
    outcomes: Counter = field(default_factory=Counter)
    """The agent's ``win``, ``draw`` and ``loss`` counts (an unfinished game counts as a draw)."""
    mean_payoff: float = 0.0
    """The agent's mean payoff (the game's zero-sum score: +1/-1 for a win or loss, chips in poker)."""


class Result(NamedTuple):
    """One game, from the agent's side."""

    agent: str
    opponent: str
    outcome: str
    payoff: float


def play_match(env_node: DictConfig, reward: DictConfig, agent: Player, opponent: Player, first: str, games: int,
               num_envs: int, seed: int) -> tuple[Match, list[Result]]:
    """``games`` games of ``agent`` against ``opponent`` (tasks ``seed``, ``seed + 1``, ...), and each game's result."""
    env_fn = partial(make_env, env_node, reward, opponent=opponent.opponent, first_player=first)
    env = vector_env(env_fn, num_envs)
    episodes = evaluate_tasks(env, agent.agent, list(range(seed, seed + games)), record=True).episodes
    env.close()
    ends = [episode.steps[-1].next_info for episode in episodes]
    results = [Result(agent.name, opponent.name, end.get("outcome") or "draw", float(end.get("payoff", 0.0)))
               for end in ends]
    match = Match(agent.name, opponent.name, first, Counter(r.outcome for r in results),
                  float(np.mean([r.payoff for r in results])))
    return match, results


def rate(results: Sequence[Result], players: Sequence[str], rng: np.random.Generator) -> dict[str, Any]:
    """OpenSkill (Plackett-Luce) ratings after every game, the games taken in a seeded random order."""
    model = PlackettLuce()
    ratings = {name: model.rating(name=name) for name in players}
    for i in rng.permutation(len(results)):
        a, b, outcome, _ = results[i]
        ranks = {"win": [0, 1], "draw": [0, 0], "loss": [1, 0]}[outcome]
        [[ratings[a]], [ratings[b]]] = model.rate([[ratings[a]], [ratings[b]]], ranks=ranks)
    return ratings


# ---- exploitability -------------------------------------------------------------------------------------


@dataclass
class TableStrategy:
    """A mixed strategy as a table: information state -> distribution (an exact opponent for ``TwoPlayerEnv``)."""

    table: dict[Hashable, Distribution]

    def strategy(self, game: Game, state: Any, seat: int) -> Distribution:
        return self.table[game.information(state, seat)]


def decision_states(game: Game, seat: int, limit: int) -> dict[Hashable, Any] | None:
    """A state for each information state where ``seat`` moves (both move orders); None past ``limit`` of them."""
    found: dict[Hashable, Any] = {}
    seen: set = set()
    todo = [state for first in (0, 1) for _, state in game.starts(first)]
    while todo:
        state = todo.pop()
        if state in seen or game.payoff(state) is not None:
            continue
        seen.add(state)
        if game.to_move(state) == seat:
            found.setdefault(game.information(state, seat), state)
            if len(found) > limit:
                return None
        todo += [game.play(state, action) for action in game.legal(state)]
    return found


def tabulate(policy: Policy, game: Game, states: Mapping[Hashable, Any], seat: int, samples: int,
             rng: np.random.Generator, batch: int = 256) -> TableStrategy:
    """A policy's strategy in ``seat``: its exact probabilities per state where it knows them
    (:meth:`~textgym.policies.base.Policy.action_probabilities`), else the share of ``samples`` answers per
    state that chose each legal move (an answer that is not one counts as a uniformly random legal move, as
    the env plays it)."""
    keys = list(states)
    counts: dict[Hashable, Counter] = {key: Counter() for key in keys}

    def count(key: Hashable, answer: str, weight: float) -> None:
        legal = game.legal(states[key])
        try:
            move = game.parse(answer)
        except InvalidAction:
            move = None
        if move in legal:
            counts[key][move] += weight
        else:
            for action in legal:
                counts[key][action] += weight / len(legal)

    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        observations = [game.view(states[key], seat) for key in chunk]
        infos = [{"valid_actions": list(game.legal(states[key])), "instructions": game.instructions(seat), "state": key}
                 for key in chunk]
        exact = policy.action_probabilities(observations, infos)
        if exact is not None:
            for key, probabilities in zip(chunk, exact):
                for answer, probability in probabilities.items():
                    count(key, answer, probability)
            continue
        for _ in range(samples):
            for key, answer in zip(chunk, policy.act(observations, infos)):
                count(key, answer, 1.0 / samples)
    table = {}
    for key in keys:
        total = sum(counts[key].values())
        table[key] = tuple((counts[key][a] / total, a) for a in game.legal(states[key]) if counts[key][a] > 0)
    return TableStrategy(table)


FIRSTS = ("agent", "opponent")
"""The move orders of the single-agent env (its ``first_player``)."""


def best_response(env_node: DictConfig, reward: DictConfig, opponent: str | TableStrategy, first: str) -> float:
    """What the exact best response to ``opponent`` (in the opponent's seat) earns with ``first`` to move."""
    return GroundTruth.of(make_env(env_node, reward, opponent=opponent, first_player=first)).optimal_return


def exploitability(env_node: DictConfig, reward: DictConfig, opponent: str | TableStrategy,
                   values: Mapping[str, float]) -> float:
    """How much more than the game's value (``values``: per move order, the best response to the optimal
    player) the best response to ``opponent`` earns, averaged over both move orders, in the env's reward."""
    return float(np.mean([best_response(env_node, reward, opponent, first) - values[first] for first in FIRSTS]))


# ---- the run ------------------------------------------------------------------------------------------------


@dataclass
class Standing:
    """One player's results: rating, outcome rates over all its games, exploitability."""

    name: str
    mu: float
    sigma: float
    ordinal: float
    games: int
    rates: dict[str, float]
    mean_payoff: float
    exploitability: float | None


def run_tournament(cfg: TournamentConfig, searchpath: Sequence[str] = (),
                   models: BaseModels | None = None) -> tuple[list[Standing], list[Match]]:
    """Play the round robin of ``cfg`` (within an initialised Hydra, as ``textgym tournament`` runs it).

    Given ``models``, the first LLM player borrows its base model from there (a benchmark's one base);
    any further LLM player loads its own, since lending the base again would unload the first one's adapters.
    """
    hydra_path = [f"hydra.searchpath=[{','.join(repr(p) for p in searchpath)}]"] if searchpath else []

    def run_config(entrant: Entrant) -> DictConfig:
        overrides = [f"env={cfg.game}", f"seed={cfg.seed}", "logger=none", *cfg.overrides, *entrant.overrides]
        policy = [f"policy={entrant.policy}"] if entrant.policy else []
        return compose(config_name="config", overrides=[*overrides, *policy, *hydra_path])

    base = run_config(Entrant(scripted=OPTIMAL))
    probe = make_env(base.env, base.reward)
    if not isinstance(probe.unwrapped, TwoPlayerEnv):
        raise ValueError(f"game={cfg.game} ({base.env.id}) is not a two-player game; use tic_tac_toe, connect_four, "
                         "kuhn_poker or nim")
    game = probe.unwrapped.game
    lends = models.lends if models is not None else 0
    players = []
    for name, entrant in cfg.players.items():
        shared = models if models is not None and models.lends == lends else None
        players.append(make_player(name, entrant, game, run_config(entrant), cfg.seed, shared))
    matches: list[Match] = []
    results: list[Result] = []
    for a in players:
        for b in players:
            if a is b:
                continue
            for first in FIRSTS:
                task = EVAL_SEED_OFFSET + cfg.seed * 1000 + len(matches) * cfg.games
                match, played = play_match(base.env, base.reward, a, b, first, cfg.games, cfg.num_envs, task)
                matches.append(match)
                results += played
                log.info("%s vs %s (%s first): %s", a.name, b.name, first, dict(match.outcomes))
    ratings = rate(results, [p.name for p in players], np.random.default_rng(cfg.seed))
    rng = np.random.default_rng(cfg.seed)
    states = decision_states(game, 1, cfg.max_information_states)
    values = {first: best_response(base.env, base.reward, game.optimal, first) for first in FIRSTS}
    standings = []
    for player in players:
        mine = [(r.outcome, r.payoff) if r.agent == player.name else (FLIP[r.outcome], -r.payoff)
                for r in results if player.name in (r.agent, r.opponent)]
        counts = Counter(outcome for outcome, _ in mine)
        total = len(mine)
        gap = None
        if isinstance(player.opponent, str) and player.opponent == game.optimal:
            gap = 0.0  # the best response to it is what defines the game's value: nothing to solve again
        elif isinstance(player.opponent, str) or states is not None:
            opponent = player.opponent if isinstance(player.opponent, str) else tabulate(
                player.opponent, game, states, 1, cfg.exploitability_samples, rng)
            gap = exploitability(base.env, base.reward, opponent, values)
        rating = ratings[player.name]
        standings.append(Standing(player.name, rating.mu, rating.sigma, rating.ordinal(), total,
                                  {o: counts[o] / total for o in OUTCOMES},
                                  float(np.mean([payoff for _, payoff in mine])), gap))
    standings.sort(key=lambda s: -s.ordinal)
    return standings, matches


def standing_rows(standings: Sequence[Standing]) -> tuple[list[str], list[list]]:
    columns = ["player", "mu", "sigma", "ordinal", "games", "win_rate", "draw_rate", "loss_rate", "mean_payoff",
               "exploitability"]
    return columns, [[s.name, round(s.mu, 3), round(s.sigma, 3), round(s.ordinal, 3), s.games,
                      *(round(s.rates[o], 4) for o in OUTCOMES), round(s.mean_payoff, 4),
                      None if s.exploitability is None else round(s.exploitability, 6)] for s in standings]


def ratings_table(standings: Sequence[Standing]) -> str:
    """The ratings as a Markdown table (exploitability ``n/a`` where it was not computed)."""
    columns, rows = standing_rows(standings)
    return markdown_table(columns, [[cell if cell is not None else "n/a" for cell in row] for row in rows])


def match_rows(matches: Sequence[Match]) -> tuple[list[str], list[list]]:
    columns = ["agent", "opponent", "first", "wins", "draws", "losses", "mean_payoff"]
    return columns, [[m.agent, m.opponent, m.first, *(m.outcomes[o] for o in OUTCOMES), round(m.mean_payoff, 4)]
                     for m in matches]


def markdown(cfg: TournamentConfig, standings: Sequence[Standing], matches: Sequence[Match], command: str) -> str:
    return "\n".join([
        "# textgym tournament", "", f"`{command}`", "",
        f"Round robin on `{cfg.game}`: every ordered pair, both move orders, {cfg.games} games each. OpenSkill "
        "(Plackett-Luce) rating mu with its uncertainty sigma, from each game's winner; ordinal = mu - 3 sigma. "
        "Mean payoff: the zero-sum score per game (+1/0/-1, chips in poker, where hands won and chips won differ). "
        "Exploitability: the exact "
        "best response's gain over the game's value against the player's tabulated strategy (n/a: too many "
        "information states).", "", ratings_table(standings), "", "## Matches", "",
        markdown_table(*match_rows(matches)), "",
    ])


def store_tournament_schema() -> None:
    """Register :class:`TournamentConfig` as the schema of ``conf/tournament.yaml``."""
    store_schemas()
    ConfigStore.instance().store(name="tournament_schema", node=TournamentConfig)


store_tournament_schema()


@hydra.main(config_path="pkg://textgym.conf", config_name="tournament", version_base="1.3")
def tournament(cfg: DictConfig) -> None:
    """Play the round robin, write ``ratings.csv``, ``matches.csv`` and ``tournament.md``, print the ratings."""
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    config: TournamentConfig = OmegaConf.to_object(cfg)
    standings, matches = run_tournament(config, list(hc.searchpath))
    write_csv(out / "ratings.csv", *standing_rows(standings))
    write_csv(out / "matches.csv", *match_rows(matches))
    command = " ".join(["textgym tournament", *hc.overrides.task])
    (out / "tournament.md").write_text(markdown(config, standings, matches, command))
    print(f"{ratings_table(standings)}\n\nratings and matches in {out}")  # noqa: T201
