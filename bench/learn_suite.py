"""Run a learning recipe (``conf/experiment/<name>.yaml``) end to end through the installed ``textgym``.

Where the recipe names a ``warm_start``: ``textgym collect`` records oracle episodes, ``algorithm=bc`` clones
them through the policy's own scoring, and PPO (``textgym train +experiment=<name>``) starts from the clone
(``policy.init_from``); otherwise, or with ``--no-warm-start`` (the ablation), PPO runs alone from the base
model. A ``warm_start.dagger`` block (``rounds``, 1 by default; ``episodes`` and ``bc`` as the warm start's)
adds DAgger rounds after BC: the clone plays ``episodes`` new tasks (greedy, as evaluated), the oracle labels
every state it reaches (``textgym collect policy@expert=oracle``), and BC goes on from the clone over the
aggregate: the oracle's episodes and every round's labelled states. A recipe whose PPO does no updates
(``algorithm.total_updates: 0``: the clone is the result) skips PPO, and the last imitation run makes the
final evaluation with the recipe's ``eval`` settings, instead of evaluating the clone twice. Success is the
final evaluation's ``success_rate`` in its ``results.json``: the env's own success flag, which no reward
shaping touches. The last line is

    <name> seed S: success X.XX (target T), violations V.VV, N CPU-minutes (M wall)

with the violation rate where the env reports one (``n/a`` otherwise) and the CPU time of every child
process together (``RUSAGE_CHILDREN``), wall-clock minutes in brackets. On such envs the line before it
names the rules broken, each with the share of evaluation episodes that broke it.

    python bench/learn_suite.py lake --seed 0
    python bench/learn_suite.py guess32 --seed 1 --override logger=none
    python bench/learn_suite.py lake --override policy.model=<dir> --override algorithm.total_updates=1
    python bench/learn_suite.py lake --seed 1 --no-warm-start    # what the clone buys: PPO alone
    python bench/learn_suite.py customer_service --seed 1 --resume   # after a kill, a crash or a preemption

The stages' record, ``<out>/stages.json``, holds every attempt's CPU and wall seconds and how it ended; the
verdict's figures add up all of them. Ctrl-C or ``kill`` (SIGINT, SIGTERM) stops the running stage at its next
safe point with a checkpoint; ``--resume`` then keeps the finished stages and continues the others (a second
signal stops the stage at once, from its last checkpoint). Without ``--resume`` a dir holding a record is refused.

An ``--override`` goes to every stage that has its key: ``env.*`` and ``reward.*`` to all of them,
``policy.*``, ``eval.*`` and ``logger`` to the training runs (``policy.*`` to DAgger's collection too),
``warm_start.*`` into the recipe (``warm_start.bc.epochs=2``, ``warm_start.dagger.rounds=1``), anything else
(``algorithm.*``) to PPO only.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

SHARED = ("env.", "reward.")
"""Override prefixes that every stage gets: the task itself."""
LEARNER = ("policy.", "eval.", "logger")
"""Override prefixes that the two training stages (BC, PPO) get."""


def recipe(name: str) -> DictConfig:
    """The raw ``conf/experiment/<name>.yaml`` of the installed package (not composed)."""
    path = files("textgym.conf") / "experiment" / f"{name}.yaml"
    if not path.is_file():
        shipped = (files("textgym.conf") / "experiment").iterdir()
        known = sorted(p.name.removesuffix(".yaml") for p in shipped if p.name.endswith(".yaml"))
        raise SystemExit(f"learn_suite: no recipe {name!r}; the recipes are {', '.join(known)}")
    return OmegaConf.create(path.read_text())


def env_choice(config: DictConfig) -> str:
    """The env config group the recipe selects (``override /env: <choice>`` in its defaults)."""
    for entry in config.get("defaults", []):
        if isinstance(entry, DictConfig) and "override /env" in entry:
            return str(entry["override /env"])
    raise SystemExit("learn_suite: the recipe's defaults must select an env (- override /env: <name>)")


def value_text(value: Any) -> str:
    """A config value as Hydra's override grammar reads it."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (list, ListConfig)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    return str(value)


def dotlist(node: DictConfig | None, prefix: str) -> list[str]:
    """``prefix.key=value`` overrides for every leaf of ``node``."""
    if node is None:
        return []
    out = []
    for key, value in node.items():
        if isinstance(value, DictConfig):
            out += dotlist(value, f"{prefix}.{key}")
        else:
            out.append(f"{prefix}.{key}={value_text(value)}")
    return out


def route(config: DictConfig, overrides: list[str]) -> dict[str, list[str]]:
    """The ``--override`` items each stage gets (see the module docstring); ``warm_start.*`` ones are set in
    the recipe ``config``."""
    stages: dict[str, list[str]] = {"collect": [], "bc": [], "ppo": []}
    for item in overrides:
        key = item.split("=", 1)[0]
        if "=" not in item:
            raise SystemExit(f"learn_suite: --override {item!r} is not KEY=VALUE")
        if key.startswith("warm_start."):
            if "warm_start" not in config:
                raise SystemExit(f"learn_suite: --override {item!r}: the recipe has no warm_start")
            OmegaConf.update(config, key, item.split("=", 1)[1], force_add=True)
        elif key.startswith(SHARED):
            for stage in stages.values():
                stage.append(item)
        elif key.startswith(LEARNER):
            stages["bc"].append(item)
            stages["ppo"].append(item)
        else:
            stages["ppo"].append(item)
    return stages


class Runner:
    """Runs the stages as ``textgym`` children and keeps their record in ``<out>/stages.json``: every attempt's
    CPU and wall-clock seconds and how it ended (``finished``, ``interrupted``, ``failed``).

    With ``resume`` a finished stage is not run again and the others continue: ``textgym train`` from its newest
    checkpoint (``resume=true``), ``textgym collect`` afresh. SIGINT and SIGTERM go to the running child, which
    stops at its next safe point with a checkpoint (a second signal stops it at once); the attempt is recorded,
    and the suite exits with the shell's code for the signal. The child runs in a session of its own so that a
    terminal's Ctrl-C reaches it once, through the suite.
    """

    def __init__(self, out: Path, resume: bool) -> None:
        self.out, self.resume, self.path = out, resume, out / "stages.json"
        self.record: dict[str, list[dict[str, Any]]] = json.loads(self.path.read_text()) if self.path.exists() else {}
        if self.record and not resume:
            raise SystemExit(f"learn_suite: {out} holds an earlier run ({', '.join(self.record)}): pass --resume to "
                             "continue it, or --out <dir> to start elsewhere")

    def finished(self, stage: str) -> bool:
        return any(attempt["status"] == "finished" for attempt in self.record.get(stage, []))

    def run(self, stage: str, args: list[str], output: Path | None = None) -> None:
        """``textgym <args>``, its output in ``<out>/<stage>.log``; ``output``: the dir a collect stage writes."""
        if self.finished(stage):
            print(f"[{stage}] finished in an earlier attempt: not run again", flush=True)
            return
        if self.resume and args[0] == "train":
            args = [*args, "resume=true"]
        if output is not None:
            shutil.rmtree(output, ignore_errors=True)  # an interrupted collect's partial dataset
        log, before, start = self.out / f"{stage}.log", resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
        print(f"[{stage}] textgym {' '.join(args)}", flush=True)
        with log.open("a" if self.resume else "w") as stream:
            child = subprocess.Popen(["textgym", *args], stdout=stream, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
            received: list[int] = []

            def forward(signum: int, frame: Any) -> None:
                received.append(signum)
                child.send_signal(signum)

            previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                code = child.wait()
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        status = "finished" if code == 0 else "interrupted" if received else "failed"
        self.record.setdefault(stage, []).append({
            "status": status, "exit_code": code, "started": start, "wall_s": round(time.time() - start, 1),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)})
        self.path.write_text(json.dumps(self.record, indent=1))
        if received:
            print(f"learn_suite: {stage} stopped by {signal.Signals(received[0]).name} (exit status {code}); "
                  "the same command with --resume continues the run", file=sys.stderr)
            sys.exit(128 + received[0])
        if code:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise SystemExit(f"learn_suite: {stage} failed (exit status {code}); its output is in {log}")

    def totals(self) -> tuple[float, float, int]:
        """CPU and wall-clock seconds of every recorded attempt, and the number of attempts."""
        attempts = [attempt for record in self.record.values() for attempt in record]
        return sum(a["cpu_s"] for a in attempts), sum(a["wall_s"] for a in attempts), len(attempts)


def results(run_dir: Path) -> dict[str, Any]:
    """The ``results.json`` of a ``textgym train`` run (``metrics``; ``violations_by_rule`` where reported)."""
    return json.loads((run_dir / "results.json").read_text())


def warm_start(
    config: DictConfig, warm: DictConfig, seed: int, stages: dict[str, list[str]], runner: Runner, final: bool
) -> Path:
    """Collect the oracle's episodes, clone them (``algorithm=bc``) on the recipe's task, then run its DAgger
    rounds; the last imitation run's dir. A ``final`` one is evaluated as the recipe's result (its ``eval``
    settings), the others on ``eval_episodes``."""
    out = runner.out
    task = [f"env={env_choice(config)}", *dotlist(config.get("env"), "env"),
            *dotlist(config.get("reward"), "reward")]
    collect = [f"{key}={value_text(value)}" for key, value in warm.collect.items()]
    runner.run("collect", ["collect", *task, "policy=oracle", f"seed={seed}", *collect, f"output={out / 'data'}",
                           f"hydra.run.dir={out / 'collect'}", *stages["collect"]], output=out / "data")
    dagger = warm.get("dagger")
    rounds = 0 if dagger is None else int(dagger.get("rounds", 1))

    def imitate(stage: str, settings: DictConfig, datasets: list[Path], init_from: Path | None, last: bool) -> Path:
        dataset = str(datasets[0]) if len(datasets) == 1 else "[" + ",".join(map(str, datasets)) + "]"
        start = [] if init_from is None else [f"policy.init_from={init_from}"]
        runner.run(stage, ["train", *task, "algorithm=bc", *dotlist(config.get("policy"), "policy"), *start,
                           f"seed={seed}", *dotlist(settings, "algorithm"), f"algorithm.dataset={dataset}",
                           *(dotlist(config.get("eval"), "eval") if last else [f"eval.episodes={warm.eval_episodes}"]),
                           f"hydra.run.dir={out / stage}", *stages["bc"]])
        if not last:
            print(f"[{stage}] success {results(out / stage)['metrics']['success_rate']:.2f} of the clone", flush=True)
        return out / stage

    clone = imitate("bc", warm.bc, [out / "data"], None, final and rounds == 0)
    labelled: list[Path] = []
    for number in range(1, rounds + 1):
        stage = f"dagger{number}"
        labelled.append(out / f"{stage}-data")
        policy = [*dotlist(config.get("policy"), "policy"), *(i for i in stages["bc"] if i.startswith("policy."))]
        runner.run(f"{stage}-collect", ["collect", *task, "policy=llm", *policy, f"policy.init_from={clone}",
                                        "policy@expert=oracle", f"seed={seed + 10_000 * number}",
                                        f"episodes={value_text(dagger.get('episodes', warm.collect.episodes))}",
                                        f"num_envs={value_text(warm.collect.num_envs)}", f"output={labelled[-1]}",
                                        f"hydra.run.dir={out / f'{stage}-collect'}", *stages["collect"]],
                   output=labelled[-1])
        aggregate = [out / "data", *labelled]
        clone = imitate(stage, dagger.get("bc", warm.bc), aggregate, clone, final and number == rounds)
    return clone


def total_updates(config: DictConfig, ppo_overrides: list[str]) -> int:
    """PPO's updates in this run: the last ``algorithm.total_updates`` override, else the recipe's."""
    updates = config.get("algorithm", {}).get("total_updates")
    for item in ppo_overrides:
        key, value = item.split("=", 1)
        if key == "algorithm.total_updates":
            updates = value
    if updates is None:
        raise SystemExit("learn_suite: the recipe sets no algorithm.total_updates")
    return int(updates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a recipe in conf/experiment/ (lake, guess32, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="the stages' dir (default runs/learn_suite/<name>-seed<S>)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a Hydra override, routed to the stages that have its key (repeatable)")
    parser.add_argument("--no-warm-start", action="store_true",
                        help="skip the recipe's warm_start: PPO alone from the base model (an ablation)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out: finished stages are kept, the others go on from checkpoints")
    args = parser.parse_args()

    config = recipe(args.name)
    if "recipe" not in config or "target" not in config.recipe:
        raise SystemExit(f"learn_suite: {args.name}.yaml has no recipe.target")
    stages = route(config, args.override)
    out = (args.out or Path("runs") / "learn_suite" / f"{args.name}-seed{args.seed}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(out, args.resume)
    earlier = runner.totals()[2]

    ppo = ["train", f"+experiment={args.name}", f"seed={args.seed}", f"hydra.run.dir={out / 'ppo'}"]
    stage = "ppo"  # the run whose final evaluation is the verdict
    if (warm := config.get("warm_start")) is not None and not args.no_warm_start:
        clone_only = total_updates(config, stages["ppo"]) == 0
        clone = warm_start(config, warm, args.seed, stages, runner, final=clone_only)
        stage = clone.name if clone_only else stage
        ppo.append(f"policy.init_from={clone}")
    if stage == "ppo":
        runner.run("ppo", [*ppo, *stages["ppo"]])

    cpu_seconds, wall_seconds, attempts = runner.totals()
    final = results(out / stage)
    metrics = final["metrics"]
    violations = f"{metrics['violation_rate']:.2f}" if "violation_rate" in metrics else "n/a"
    print(f"[{stage}] mean length {metrics['mean_length']:.2f}, invalid-action rate "
          f"{metrics['invalid_action_rate']:.3f} over {metrics['episodes']:.0f} evaluation episodes ({out})")
    if "violations_by_rule" in final:
        shares = ", ".join(f"{rule} {share:.2f}" for rule, share in final["violations_by_rule"].items())
        print(f"[{stage}] episodes that broke each rule: {shares or 'none'}")
    if earlier:
        print(f"[resume] the times below add up {attempts} attempts of the stages, {earlier} of them in earlier runs "
              f"(recorded in {runner.path}; a child killed with SIGKILL is not recorded)")
    success, target = f"{metrics['success_rate']:.2f}", config.recipe.target
    print(f"{args.name} seed {args.seed}: success {success} (target {target}), violations {violations}, "
          f"{cpu_seconds / 60:.1f} CPU-minutes ({wall_seconds / 60:.1f} wall)")


if __name__ == "__main__":
    main()
