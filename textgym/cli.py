"""The ``textgym`` command: ``train``, ``collect``, ``benchmark``, ``tournament``, ``sweep-summary``, ``list`` and ``check``."""

from __future__ import annotations

import sys

import gymnasium as gym
from rich.console import Console
from rich.table import Table

USAGE = """usage: textgym <command> [args]

commands:
  train [hydra overrides]   train and evaluate, e.g. textgym train env=frozenlake algorithm=sarsa algorithm.alpha=0.2
                            (-m sweeps: textgym train -m algorithm.gamma=0.9,0.99 reward.step=0,-0.01,
                            or a ready one: textgym train -m sweep=grid launcher=joblib)
  collect [hydra overrides] record a policy's episodes as a trajectory dataset (Hugging Face datasets), e.g.
                            textgym collect env=frozenlake policy=oracle episodes=100 output=data/lake
  benchmark [hydra overrides]
                            policies x envs x seeds with bootstrap CIs, pass^k and a leaderboard, e.g.
                            textgym benchmark policies=[random,oracle,tabular] envs=[frozenlake,wordle]
  tournament [hydra overrides]
                            a round robin of players on a two-player env: OpenSkill ratings, win/draw/loss
                            rates, exploitability, e.g. textgym tournament game=kuhn_poker games=100
  sweep-summary <dir> [--objective METRIC]
                            one table and a plot of the results.json of every job of a -m sweep dir
  list                      every registered textgym env with a one-line description
  check <env-id>            is the env sound? (check_env, determinism, invalid actions, episode ends,
                            rewards, rendering, copies, and its tabular_mdp() against sampling)
"""


def list_envs() -> None:
    """Print every registered env outside Gymnasium's own (textgym's, and any a user registered)."""
    import textgym  # noqa: F401 - registers the envs

    table = Table("id", "steps", "description")
    for env_id, spec in sorted(gym.registry.items()):
        entry = spec.entry_point
        if isinstance(entry, str) and entry.startswith(("gymnasium.", "shimmy.", "ale_py")):
            continue
        creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
        doc = (creator.__doc__ or "").strip().splitlines()
        table.add_row(env_id, str(spec.max_episode_steps), doc[0] if doc else "")
    Console(width=160).print(table)


def check(env_id: str) -> int:
    """Print the checks of ``env_id`` as a table; the exit status is 1 if any failed."""
    import textgym  # noqa: F401 - registers the envs
    from textgym.envs.checker import check_text_env

    results = check_text_env(env_id)
    table = Table("check", "result", "details", "what to fix", title=f"textgym check {env_id}")
    style = {"pass": "[green]pass", "fail": "[bold red]FAIL", "skip": "[yellow]skip"}
    for r in results:
        table.add_row(r.name, style[r.status], r.detail, r.fix)
    Console(width=160).print(table)
    return int(any(r.status == "fail" for r in results))


def main() -> None:
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "train":
        from textgym.train import train

        sys.argv = ["textgym-train", *args]
        train()
    elif command == "collect":
        from textgym.collect import collect

        sys.argv = ["textgym-collect", *args]
        collect()
    elif command == "benchmark":
        from textgym.benchmark import benchmark

        sys.argv = ["textgym-benchmark", *args]
        benchmark()
    elif command == "tournament":
        from textgym.tournament import tournament

        sys.argv = ["textgym-tournament", *args]
        tournament()
    elif command == "sweep-summary":
        from textgym.sweep_summary import main as sweep_summary

        sys.exit(sweep_summary(args))
    elif command == "list":
        list_envs()
    elif command == "check" and len(args) == 1:
        sys.exit(check(args[0]))
    else:
        print(USAGE, file=sys.stderr)  # noqa: T201
        sys.exit(0 if command in ("-h", "--help") else 2)
