"""The learning recipes (``conf/experiment/*.yaml``) compose through the installed command, and
``bench/learn_suite.py`` runs one end to end (tiny model) and ends with its one-line verdict."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from datasets import load_from_disk
from tiny_llm import save_tiny

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "bench" / "learn_suite.py"
RECIPES = {  # recipe -> the env id its target is stated for
    "lake": "textgym/FrozenLake-v0",
    "lake_slippery": "textgym/FrozenLake-v0",
    "guess32": "textgym/GuessNumber-v0",
    "blocks4": "textgym/BlocksWorld-v0",
    "customer_service": "textgym/CustomerService-v0",
    "customer_service_hard": "textgym/CustomerServiceHard-v0",
}
VERDICT = re.compile(
    r"^(?P<name>\w+) seed (?P<seed>\d+): success (?P<success>\d\.\d\d) \(target (?P<target>[\d.]+)\), "
    r"violations (?P<violations>\d\.\d\d|n/a), (?P<cpu>\d+\.\d) CPU-minutes \((?P<wall>\d+\.\d) wall\)$"
)
ENV = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "PYTHONPATH"}


def run(args: list[str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_composes_with_its_env(name: str, tmp_path: Path) -> None:
    job = run(["textgym", "train", f"+experiment={name}", "--cfg", "job"], tmp_path)
    assert job.returncode == 0, job.stderr[-3000:]
    cfg = yaml.safe_load(job.stdout)
    assert cfg["env"]["id"] == RECIPES[name]
    assert cfg["policy"]["model"] and cfg["algorithm"]["gamma"]  # policy=llm, algorithm=ppo
    assert cfg["algorithm"]["total_updates"] >= 1 or "warm_start" in cfg  # PPO, or its clone evaluated as it is
    assert cfg["eval"]["episodes"] >= 200 and 0 < cfg["recipe"]["target"] <= 1


def test_recipes_set_the_tasks_the_targets_name(tmp_path: Path) -> None:
    def composed(name: str) -> dict:
        job = run(["textgym", "train", f"+experiment={name}", "--cfg", "job"], tmp_path)
        return yaml.safe_load(job.stdout)

    lake, slippery, guess = composed("lake"), composed("lake_slippery"), composed("guess32")
    assert lake["env"]["kwargs"]["is_slippery"] is False and lake["env"]["kwargs"]["map_name"] == "4x4"
    assert slippery["env"]["kwargs"]["is_slippery"] is True and slippery["env"]["max_episode_steps"] == 100
    assert slippery["reward"]["bump"] == 0.0  # on ice the safest route walks into edges: no cost for it
    assert lake["reward"]["bump"] == 0.0  # a bump cost makes a hole pay more than wandering
    numbers = guess["env"]["kwargs"]
    assert (numbers["low"], numbers["high"], numbers["max_guesses"]) == (1, 32, 5)
    assert composed("blocks4")["env"]["kwargs"]["num_blocks"] == 4
    assert composed("customer_service")["recipe"]["max_violation_rate"] <= 0.05


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("model") / "tiny")


def suite(
    name: str, tiny: Path, cwd: Path, *overrides: str, flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    small = [f"policy.model={tiny}", "logger=none", "algorithm.total_updates=1", "algorithm.num_envs=4",
             "algorithm.num_steps=4", "algorithm.checkpoint_every=0", "eval.episodes=8", "eval.num_envs=4",
             *overrides]
    args = [sys.executable, str(SUITE), name, "--seed", "3", "--out", "runs", *flags]
    return run([*args, *(a for item in small for a in ("--override", item))], cwd, timeout=600)


def test_suite_runs_ppo_alone_and_prints_the_verdict(tiny: Path, tmp_path: Path) -> None:
    done = suite("lake", tiny, tmp_path, flags=("--no-warm-start",))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    match = VERDICT.match(last)
    assert match, last
    assert (match["name"], match["seed"], match["target"], match["violations"]) == ("lake", "3", "0.9", "n/a")
    metrics = json.loads((tmp_path / "runs" / "ppo" / "results.json").read_text())["metrics"]
    assert match["success"] == f"{metrics['success_rate']:.2f}" and metrics["episodes"] == 8
    assert float(match["cpu"]) > 0
    assert not (tmp_path / "runs" / "bc").exists()  # the recipe's warm start skipped
    config = yaml.safe_load((tmp_path / "runs" / "ppo" / "config.yaml").read_text())
    assert config["seed"] == 3 and config["env"]["max_episode_steps"] == 12
    assert config["policy"]["init_from"] is None


def test_suite_warm_starts_ppo_from_the_cloned_oracle(tiny: Path, tmp_path: Path) -> None:
    done = suite("guess32", tiny, tmp_path, "warm_start.collect.episodes=4", "warm_start.bc.epochs=1")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert VERDICT.match(done.stdout.strip().splitlines()[-1]), done.stdout[-1000:]
    runs = tmp_path / "runs"
    assert (runs / "bc" / "adapter" / "adapter_model.safetensors").exists()
    bc = yaml.safe_load((runs / "bc" / "config.yaml").read_text())
    assert bc["algorithm"]["epochs"] == 1 and bc["algorithm"]["keep"] == "all"
    assert bc["env"]["kwargs"]["high"] == 32 and bc["reward"]["ruled_out"] == -0.1  # the recipe's task
    ppo = yaml.safe_load((runs / "ppo" / "config.yaml").read_text())
    assert ppo["policy"]["init_from"] == str(runs.resolve() / "bc")


def test_suite_makes_the_clone_the_result_when_ppo_does_no_updates(tiny: Path, tmp_path: Path) -> None:
    done = suite("customer_service", tiny, tmp_path, "warm_start.collect.episodes=4", "warm_start.bc.epochs=1",
                 "warm_start.dagger.rounds=0", "algorithm.total_updates=0")  # the clone of BC alone
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    runs = tmp_path / "runs"
    assert not (runs / "ppo").exists()  # no second evaluation of the same clone
    assert "of the clone" not in done.stdout
    *_, rules_line, verdict = done.stdout.strip().splitlines()
    match = VERDICT.match(verdict)
    assert match and rules_line.startswith("[bc] episodes that broke each rule: "), done.stdout[-1000:]
    bc = yaml.safe_load((runs / "bc" / "config.yaml").read_text())
    assert bc["eval"] == {"episodes": 8, "num_envs": 4}  # the recipe's eval, as overridden
    metrics = json.loads((runs / "bc" / "results.json").read_text())["metrics"]
    assert match["success"] == f"{metrics['success_rate']:.2f}" and metrics["episodes"] == 8


def test_suite_runs_dagger_rounds_from_the_clone(tiny: Path, tmp_path: Path) -> None:
    done = suite("guess32", tiny, tmp_path, "warm_start.collect.episodes=4", "warm_start.bc.epochs=1",
                 "warm_start.dagger.rounds=1", "warm_start.dagger.episodes=3", "warm_start.dagger.bc.epochs=1")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert VERDICT.match(done.stdout.strip().splitlines()[-1]), done.stdout[-1000:]
    runs = tmp_path / "runs"
    collect = yaml.safe_load((runs / "dagger1-collect" / "config.yaml").read_text())
    assert collect["policy"]["init_from"] == str(runs.resolve() / "bc") and collect["policy"]["greedy"]
    assert collect["expert"]["_target_"].endswith("OraclePolicy") and collect["seed"] == 3 + 10_000
    labels = load_from_disk(str(runs / "dagger1-data"))
    assert len(set(labels["task"])) == 3 and all(labels["expert_action"])
    dagger = yaml.safe_load((runs / "dagger1" / "config.yaml").read_text())
    assert dagger["policy"]["init_from"] == str(runs.resolve() / "bc")
    aggregate = [str(runs.resolve() / "data"), str(runs.resolve() / "dagger1-data")]  # DAgger's: all data so far
    assert dagger["algorithm"]["dataset"] == aggregate and dagger["algorithm"]["epochs"] == 1
    ppo = yaml.safe_load((runs / "ppo" / "config.yaml").read_text())
    assert ppo["policy"]["init_from"] == str(runs.resolve() / "dagger1")


def test_suite_names_the_recipes_when_one_is_unknown(tmp_path: Path) -> None:
    done = run([sys.executable, str(SUITE), "lakes"], tmp_path)
    assert done.returncode != 0 and "no recipe 'lakes'" in done.stderr and "guess32" in done.stderr


def test_suite_lists_the_rules_broken_on_customer_service(tiny: Path, tmp_path: Path) -> None:
    done = suite("customer_service", tiny, tmp_path, "eval.episodes=16", flags=("--no-warm-start",))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    *_, rules_line, verdict = done.stdout.strip().splitlines()
    match = VERDICT.match(verdict)
    assert match and match["violations"] != "n/a", verdict
    results = json.loads((tmp_path / "runs" / "ppo" / "results.json").read_text())
    assert rules_line.startswith("[ppo] episodes that broke each rule: ")
    by_rule = results["violations_by_rule"]
    assert all(f"{rule} {share:.2f}" in rules_line for rule, share in by_rule.items())
    assert by_rule or rules_line.endswith(": none")


def test_suite_stopped_by_kill_resumes_from_the_checkpoint(tiny: Path, tmp_path: Path) -> None:
    """``kill <suite>`` mid-BC: the child stops with a checkpoint; a rerun is refused; ``--resume`` goes on."""
    small = [f"policy.model={tiny}", "logger=none", "algorithm.total_updates=1", "algorithm.num_envs=4",
             "algorithm.num_steps=4", "eval.episodes=8", "eval.num_envs=4", "warm_start.collect.episodes=4",
             "warm_start.bc.epochs=400"]
    args = [sys.executable, str(SUITE), "guess32", "--seed", "3", "--out", "runs",
            *(a for item in small for a in ("--override", item))]
    bc_log = tmp_path / "runs" / "bc.log"
    suite = subprocess.Popen(args, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 300
    while not (bc_log.exists() and "update 2:" in bc_log.read_text()):
        assert suite.poll() is None and time.monotonic() < deadline, suite.communicate()
        time.sleep(0.2)
    suite.send_signal(signal.SIGTERM)  # to the suite alone, as `kill <pid>` does
    out, err = suite.communicate(timeout=120)
    assert suite.returncode == 143, out + err
    assert "bc stopped by SIGTERM" in err and "--resume" in err
    assert "stopped by SIGTERM after" in bc_log.read_text()  # the child got it and checkpointed
    record = json.loads((tmp_path / "runs" / "stages.json").read_text())
    assert [a["status"] for a in record["collect"]] == ["finished"]
    assert [a["status"] for a in record["bc"]] == ["interrupted"] and "ppo" not in record

    refused = run(args, tmp_path)
    assert refused.returncode != 0 and "pass --resume" in refused.stderr

    done = run([*args, "--resume"], tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "[collect] finished in an earlier attempt" in done.stdout
    assert re.search(r"resumed from .*step-\d+ \(\d+ steps done\)", bc_log.read_text())
    record = json.loads((tmp_path / "runs" / "stages.json").read_text())
    assert [a["status"] for a in record["bc"]] == ["interrupted", "finished"] and "ppo" in record
    *_, note, verdict = done.stdout.strip().splitlines()
    match = VERDICT.match(verdict)
    assert match and note.startswith("[resume] the times below add up 4 attempts"), done.stdout[-1000:]
    cpu = sum(a["cpu_s"] for attempts in record.values() for a in attempts) / 60
    assert match["cpu"] == f"{cpu:.1f}"
