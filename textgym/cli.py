"""The ``textgym`` command: ``train``, ``collect``, ``benchmark``, ``tournament``, ``sweep-summary``, ``list`` and ``check``."""

from __future__ import annotations

import os
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
                            policies x envs x seeds with bootstrap CIs, pass^k and a leaderboard, and a
                            round robin with ratings on each two-player env, e.g.
                            textgym benchmark policies=[random,oracle,tabular] envs=[frozenlake,wordle]
  tournament [hydra overrides]
                            a round robin of players on a two-player env: OpenSkill ratings, win/draw/loss
                            rates, exploitability, e.g. textgym tournament game=kuhn_poker games=100
  sweep-summary <dir> [--objective METRIC]
                            one table and a plot of the results.json of every job of a -m sweep dir
  list [--all]              textgym's envs with a one-line description (--all: every registered id)
  check <env-id>            is the env sound? any Gymnasium id; module:id imports module.py from here
                            (check_env, determinism, hostile and valid actions, episode ends, rewards,
                            rendering, copies, its tabular_mdp() against sampling; skips what does not apply)
  serve <env-id> [--host 127.0.0.1 --port 8000 --max-sessions N --idle-timeout S --web] [--export DIR]
                            serve an env over OpenEnv (WebSocket sessions, a web page), or export an
                            OpenEnv env package of it (needs pip install 'textgym[serve]')
"""


def _summary(entry_point: object) -> str:
    """The first docstring line of an env's class, or "" where it cannot be imported (a missing extra)."""
    try:
        creator = gym.envs.registration.load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    except Exception:  # noqa: BLE001 - e.g. Gymnasium's placeholder ids whose packages are not installed
        return ""
    doc = (creator.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def list_envs(every_id: bool = False) -> None:
    """Print textgym's envs (``textgym/...``), or with ``every_id`` every registered id, Gymnasium's included."""
    import textgym  # noqa: F401 - registers the envs

    table = Table("id", "steps", "description")
    for env_id, spec in sorted(gym.registry.items()):
        if every_id or spec.namespace == "textgym":
            table.add_row(env_id, str(spec.max_episode_steps), _summary(spec.entry_point))
    Console(width=160).print(table)


def check(env_id: str) -> int:
    """Print the checks of ``env_id`` as a table; the exit status is 1 if any failed."""
    import textgym  # noqa: F401 - registers the envs
    from textgym.envs.checker import run_checks

    results = run_checks(env_id)
    table = Table("check", "result", "details", "what to fix", title=f"textgym check {env_id}")
    style = {"pass": "[green]pass", "fail": "[bold red]FAIL", "skip": "[yellow]skip"}
    for r in results:
        table.add_row(r.name, style[r.status], r.detail, r.fix)
    Console(width=160).print(table)
    return int(any(r.status == "fail" for r in results))


def import_from_working_directory() -> None:
    """Put the working directory first on ``sys.path``, as ``python -m`` does (unless ``PYTHONSAFEPATH``).

    A console script has only its own directory there, so ``textgym check mymod:my/Env-v0`` or an env
    config with ``id: mymod:my/Env-v0`` could not import the user's ``mymod.py`` next to them.
    """
    cwd = os.getcwd()
    if not sys.flags.safe_path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def main() -> None:
    # torch's OpenMP threads spin while they wait; on a shared or oversubscribed machine (a sweep's parallel
    # jobs, a busy 2-core box) that cost 11x the wall time of an LLM env step. Set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import_from_working_directory()
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
    elif command == "list" and args in ([], ["--all"]):
        list_envs(every_id=args == ["--all"])
    elif command == "check" and len(args) == 1:
        sys.exit(check(args[0]))
    elif command == "serve":
        from textgym.serve import main as serve

        sys.exit(serve(args))
    else:
        print(USAGE, file=sys.stderr)  # noqa: T201
        sys.exit(0 if command in ("-h", "--help") else 2)
