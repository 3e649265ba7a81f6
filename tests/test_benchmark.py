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


def shown(value: str, low: str, high: str) -> str:
    """An estimate as the Markdown tables print it (a zero-width interval marked)."""
    return f"{float(value):.2f} [{float(low):.2f}, {float(high):.2f}]" + ("†" if low == high else "")


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
        row = markdown_row(text, env, policy)
        header = markdown_row(text, env, "policy")
        for metric, heading in [
            ("success_rate", "success"),
            ("violation_rate", "violations"),
            ("pass^4", "pass^4"),
        ]:
            if result[metric]:
                expected = shown(result[metric], result[metric + "_low"], result[metric + "_high"])
                assert row[header.index(heading)] == expected
                assert (result[metric + "_low"] == result[metric + "_high"]) == (metric in result["no_spread"].split())
        success = shown(result["success_rate"], result["success_rate_low"], result["success_rate_high"])
        assert success == markdown_row(text, "Success rate", policy)[3 + ["customer_service", "guess_number"].index(env)]
        assert float(result["success_rate_low"]) < float(result["success_rate_high"])  # Wilson: never zero width
    for policy, row in aggregate.items():
        assert markdown_row(text, "Success rate", policy)[1] == shown(
            row["iqm_success"], row["iqm_success_low"], row["iqm_success_high"]
        )
        assert row["ranked"] == "1" and float(row["iqm_success_low"]) < float(row["iqm_success_high"])
    order = [
        line.split("|")[1].strip()
        for line in text.split("## Success rate")[1].split("\n## ")[0].splitlines()[4:]
        if line
    ]
    assert order == sorted(aggregate, key=lambda p: -float(aggregate[p]["iqm_success"]))  # best first

    # every pair of policies compared on every env and over both, recomputed from the episodes
    comparisons = {(r["policy_a"], r["policy_b"], r["env"]): r for r in rows(out / "comparisons.csv")}
    assert len(comparisons) == 3 * 3
    for (a, b, env), row in comparisons.items():
        assert {a, b} <= {"random", "oracle", "tabular_text"} and a != b
        assert float(row["p_improvement_low"]) <= float(row["p_improvement"]) <= float(row["p_improvement_high"])
        assert row["distinguishable"] == str(int(not float(row["p_improvement_low"]) <= 0.5 <= float(row["p_improvement_high"])))
        zero_width = row["success_difference_low"] == row["success_difference_high"]
        assert row["no_spread"] == str(int(zero_width))
        if env == "all":
            continue
        rate = {p: [sum(runs) / 4 for (q, v, _), runs in sorted(by_task.items()) if (q, v) == (p, env)] for p in (a, b)}
        x, y = rate[a], rate[b]
        poi = sum((u > v) + 0.5 * (u == v) for u in x for v in y) / (len(x) * len(y))
        assert float(row["p_improvement"]) == pytest.approx(poi)
        assert float(row["success_difference"]) == pytest.approx(sum(x) / len(x) - sum(y) / len(y))
    [pair] = [line for line in text.split("## Pairwise comparisons")[1].splitlines() if line.startswith("| oracle | random |")]
    assert pair.endswith("| oracle better |")
    assert "## Minimum detectable difference" in text

    # the figures plot the same numbers
    figure = plotted(out / "success.png")
    for (policy, env), result in results.items():
        assert figure[policy][env] == pytest.approx(
            [float(result[k]) for k in ("success_rate", "success_rate_low", "success_rate_high")]
        )
    assert figure["oracle"]["IQM"][0] == pytest.approx(float(aggregate["oracle"]["iqm_success"]))
    curves = plotted(out / "learning_curves.png")
    assert (
        set(curves) == {"customer_service", "guess_number"}
        and len(curves["guess_number"]["tabular_text"]) == 2
    )
    assert [point[0] for point in curves["guess_number"]["tabular_text"][0]] == [100, 200, 300]

    # and the W&B run (offline: no key here) holds the tables
    [wandb_file] = out.glob("wandb/offline-run-*/run-*.wandb")
    assert (
        b"benchmark/results" in wandb_file.read_bytes() and b"benchmark/comparisons" in wandb_file.read_bytes()
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
    walker = results["walker", "frozenlake"]
    success = shown(walker["success_rate"], walker["success_rate_low"], walker["success_rate_high"])
    assert float(walker["success_rate_low"]) < 1.0  # 12 of 12, but 6 tasks repeated: Wilson at n = 6
    assert markdown_row(text, "Success rate", "walker")[2:] == ["1/2", success, "n/a"]  # not ranked, shown apart
    assert "Not ranked" in text and markdown_row(text, "Success rate", "random")[2] == "2/2"
    aggregate = {r["policy"]: r for r in rows(out / "aggregate.csv")}
    assert aggregate["walker"]["ranked"] == "0" and aggregate["random"]["ranked"] == "1"
    [pair] = [r for r in rows(out / "comparisons.csv") if r["env"] == "all"]
    assert (pair["policy_a"], pair["policy_b"], pair["envs"]) == ("random", "walker", "1")  # the shared env only
    assert "FileNotFoundError" in (out / "benchmark.log").read_text()  # the failed cell's traceback
    assert "Traceback" in (out / "benchmark.log").read_text()
    assert plotted(out / "learning_curves.png") == {"frozenlake": {"walker": [[[10, 0.5], [20, 1.0]]] * 2}}


def test_bad_config_is_one_line_before_any_cell(tmp_path: Path) -> None:
    for override, named in [("policies=[nope]", "'nope'"), ("envs=[nope]", "'nope'"), ("tasks=0", "tasks=0"),
                             ("torch_threads=0", "torch_threads=0")]:
        run = textgym("benchmark", override, "logger=none", "hydra.run.dir=bench", cwd=tmp_path)
        assert run.returncode != 0 and named in run.stderr, run.stderr
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert not (tmp_path / "bench" / "config.yaml").exists() and not list(tmp_path.rglob("*.csv"))


def test_a_run_in_which_every_cell_failed_exits_non_zero(tmp_path: Path) -> None:
    run = textgym(
        "benchmark", "envs=[frozenlake]", "policies=[walker]", "seeds=[0]", "tasks=2", "trials=1", "logger=none",
        "+setup.walker={policy: tabular, checkpoint: 'nowhere/{env}'}", "hydra.run.dir=bench", cwd=tmp_path,
    )
    assert run.returncode == 1 and "every cell failed" in run.stderr, run.stderr
    assert "FileNotFoundError" in (tmp_path / "bench" / "leaderboard.md").read_text()
    assert "Traceback" in (tmp_path / "bench" / "benchmark.log").read_text()


def test_one_seed_gives_task_level_intervals_and_comparisons(tmp_path: Path) -> None:
    """The issue's command: no zero-width interval for the random policy, and comparisons.csv."""
    run = textgym(
        "benchmark", "policies=[random,oracle]", "envs=[guess_number,tic_tac_toe]", "seeds=[0]", "tasks=10",
        "trials=2", "logger=none", "hydra.run.dir=bench", cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    random_row = next(line for line in run.stdout.splitlines() if line.startswith("| random |"))
    intervals = re.findall(r"\[([-\d.]+), ([-\d.]+)\]", random_row)
    assert len(intervals) == 3 and all(low != high for low, high in intervals) and "†" not in random_row
    comparisons = rows(tmp_path / "bench" / "comparisons.csv")
    assert [(r["policy_a"], r["policy_b"], r["env"]) for r in comparisons] == [
        ("oracle", "random", "guess_number"), ("oracle", "random", "tic_tac_toe"), ("oracle", "random", "all")
    ]
    for result in rows(tmp_path / "bench" / "results.csv"):  # zero width only where nothing varied, and marked
        for metric in result["no_spread"].split():
            assert result[f"{metric}_low"] == result[f"{metric}_high"] == result[metric] or metric == "regret"
