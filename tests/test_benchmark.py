"""``textgym benchmark`` as a user runs it: the CSVs, the Markdown tables and the PNGs hold the numbers."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from math import comb
from pathlib import Path

import pytest
from PIL import Image
from test_cli import textgym

from textgym.policies.tabular import TabularPolicy

QUICK_TABULAR = (
    'setup.tabular_text.overrides=["policy.state_key=observation","algorithm.episodes=300",'
    '"algorithm.eval_every=100","algorithm.eval_episodes=16"]'
)
"""Tabular Q-learning on observation keys, trained for 300 episodes instead of the default 10,000."""


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def plotted(path: Path) -> object:
    """The numbers a figure shows, from its PNG's Description chunk (see ``textgym.plots.save``)."""
    with Image.open(path) as image:
        return json.loads(image.text["Description"])


def markdown_row(text: str, section: str, policy: str) -> list[str]:
    """The cells of ``policy``'s row in the table under the ``## section`` heading."""
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    line = next(line for line in body.splitlines() if line.startswith(f"| {policy} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_two_envs_three_policies_two_seeds(tmp_path: Path) -> None:
    run = textgym(
        "benchmark",
        "envs=[customer_service,guess_number]",
        "policies=[random,oracle,tabular_text]",
        "seeds=[0,1]",
        "tasks=5",
        "trials=4",
        "num_envs=4",
        "resamples=300",
        QUICK_TABULAR,
        "hydra.run.dir=bench",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "bench"
    results = {(r["policy"], r["env"]): r for r in rows(out / "results.csv")}
    episodes = rows(out / "episodes.csv")
    assert set(results) == {
        (p, e) for p in ("random", "oracle", "tabular_text") for e in ("customer_service", "guess_number")
    }
    assert all(
        r["error"] == "" and r["episodes"] == "40" for r in results.values()
    )  # 2 seeds x 5 tasks x 4 trials

    # every number recomputed from the episodes: success, violations and tau-bench's pass^k
    by_task: dict[tuple, list[bool]] = defaultdict(list)
    for e in episodes:
        by_task[e["policy"], e["env"], e["task"]].append(e["success"] == "1")
    for (policy, env), result in results.items():
        tasks = [runs for (p, v, _), runs in by_task.items() if (p, v) == (policy, env)]
        assert len(tasks) == 10 and {len(runs) for runs in tasks} == {4}  # tasks differ between seeds
        assert float(result["success_rate"]) == pytest.approx(sum(map(sum, tasks)) / 40)
        for k in range(1, 5):
            expected = sum(comb(sum(runs), k) / comb(4, k) for runs in tasks) / len(tasks)
            assert float(result[f"pass^{k}"]) == pytest.approx(expected)
            assert (
                float(result[f"pass^{k}_low"])
                <= float(result[f"pass^{k}"])
                <= float(result[f"pass^{k}_high"])
            )
    cs = [e for e in episodes if e["env"] == "customer_service"]
    for policy in ("random", "oracle"):
        broke = [int(e["violations"]) > 0 for e in cs if e["policy"] == policy]
        assert float(results[policy, "customer_service"]["violation_rate"]) == pytest.approx(
            sum(broke) / len(broke)
        )
    assert results["oracle", "customer_service"]["success_rate"] == "1.0"
    assert float(results["random", "customer_service"]["violation_rate"]) > 0
    assert (
        results["random", "guess_number"]["regret"] != ""
        and results["random", "customer_service"]["regret"] == ""
    )
    random_passes = [float(results["random", "guess_number"][f"pass^{k}"]) for k in range(1, 5)]
    assert random_passes == sorted(random_passes, reverse=True) and random_passes[0] > random_passes[-1]

    # the Markdown tables show those numbers with their intervals
    text = (out / "leaderboard.md").read_text()
    aggregate = {r["policy"]: r for r in rows(out / "aggregate.csv")}
    for (policy, env), result in results.items():
        shown = markdown_row(text, env, policy)
        header = markdown_row(text, env, "policy")
        for metric, heading in [
            ("success_rate", "success"),
            ("violation_rate", "violations"),
            ("pass^4", "pass^4"),
        ]:
            if result[metric]:
                low, high = float(result[metric + "_low"]), float(result[metric + "_high"])
                expected = f"{float(result[metric]):.2f} [{low:.2f}, {high:.2f}]"
                assert shown[header.index(heading)] == expected
        assert (
            f"{float(result['success_rate']):.2f} ["
            in markdown_row(text, "Success rate", policy)[3 + ["customer_service", "guess_number"].index(env)]
        )
    for policy, row in aggregate.items():
        assert markdown_row(text, "Success rate", policy)[1].startswith(f"{float(row['iqm_success']):.2f} [")
    order = [
        line.split("|")[1].strip()
        for line in text.split("## Success rate")[1].split("## How")[0].splitlines()[4:]
        if line
    ]
    assert order == sorted(aggregate, key=lambda p: -float(aggregate[p]["iqm_success"]))  # best first

    # the figures plot the same numbers
    success = plotted(out / "success.png")
    for (policy, env), result in results.items():
        assert success[policy][env] == pytest.approx(
            [float(result[k]) for k in ("success_rate", "success_rate_low", "success_rate_high")]
        )
    assert success["oracle"]["IQM"][0] == pytest.approx(float(aggregate["oracle"]["iqm_success"]))
    curves = plotted(out / "learning_curves.png")
    assert (
        set(curves) == {"customer_service", "guess_number"}
        and len(curves["guess_number"]["tabular_text"]) == 2
    )
    assert [point[0] for point in curves["guess_number"]["tabular_text"][0]] == [100, 200, 300]

    # and the W&B run (offline: no key here) holds the tables
    [wandb_file] = out.glob("wandb/offline-run-*/run-*.wandb")
    assert (
        b"benchmark/results" in wandb_file.read_bytes() and b"benchmark/aggregate" in wandb_file.read_bytes()
    )


def test_policies_load_from_checkpoints_and_failing_cells_are_skipped(tmp_path: Path) -> None:
    # a hand-written Q-table that walks the 4x4 map's safe path (not slippery): success is certain
    path = {0: "down", 4: "down", 8: "right", 9: "right", 10: "down", 14: "right"}
    policy = TabularPolicy()
    for state, action in path.items():
        policy.q[state][action] = 1.0
    for seed in (0, 1):
        checkpoint = tmp_path / "runs" / "frozenlake" / str(seed)
        checkpoint.mkdir(parents=True)
        policy.save(checkpoint)
        (checkpoint / "learning_curve.json").write_text(
            json.dumps([{"episode": 10, "success_rate": 0.5}, {"episode": 20, "success_rate": 1.0}])
        )
    run = textgym(
        "benchmark",
        "envs=[frozenlake,frozenlake_8x8]",
        "policies=[walker,random]",
        "seeds=[0,1]",
        "tasks=3",
        "trials=2",
        "max_k=2",
        "resamples=200",
        "logger=none",
        "+setup.walker={policy: tabular, checkpoint: 'runs/{env}/{seed}'}",
        'overrides=["env.kwargs.is_slippery=false"]',
        "hydra.run.dir=bench",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "bench"
    results = {(r["policy"], r["env"]): r for r in rows(out / "results.csv")}
    assert (
        results["walker", "frozenlake"]["success_rate"] == "1.0"
        and results["walker", "frozenlake"]["pass^2"] == "1.0"
    )
    assert "FileNotFoundError" in results["walker", "frozenlake_8x8"]["error"]  # no checkpoint for that env
    assert (
        results["random", "frozenlake_8x8"]["error"] == ""
        and "pass^3" not in results["random", "frozenlake_8x8"]
    )
    text = (out / "leaderboard.md").read_text()
    assert "loaded from `runs/{env}/{seed}`" in text and re.search(
        r"walker on frozenlake_8x8: FileNotFoundError", text
    )
    assert markdown_row(text, "Success rate", "walker")[2:] == ["1/2", "1.00 [1.00, 1.00]", "n/a"]
    assert plotted(out / "learning_curves.png") == {"frozenlake": {"walker": [[[10, 0.5], [20, 1.0]]] * 2}}


def test_config_errors_give_the_reason(tmp_path: Path) -> None:
    run = textgym("benchmark", "trials=2", "max_k=4", "logger=none", cwd=tmp_path)
    assert run.returncode != 0 and "raise trials=2" in run.stderr
    run = textgym(
        "benchmark",
        "envs=[frozenlake]",
        "policies=[nonexistent]",
        "on_error=stop",
        "logger=none",
        cwd=tmp_path,
    )
    assert run.returncode != 0 and "nonexistent" in run.stderr
