"""The shipped sweeps and launchers (conf/sweep, conf/launcher) and ``textgym sweep-summary``."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from PIL import Image
from test_cli import textgym

from textgym.factory import store_schemas

CONF = Path(__file__).parents[1] / "conf"
QUICK = [
    "algorithm.episodes=300",
    "algorithm.eval_every=100",
    "algorithm.eval_episodes=20",
    "eval.episodes=40",
]


def results(sweep: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(sweep.glob("*/results.json"))]


def summary_rows(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "summary.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_grid_with_joblib_gives_8_results_sharing_a_sweep_id_and_a_summary(tmp_path: Path) -> None:
    run = textgym(
        "train",
        "-m",
        "sweep=grid",
        "launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *QUICK,
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    sweep = tmp_path / "sweep"
    jobs = results(sweep)
    axes = {
        key: str(values).split(",")
        for key, values in yaml.safe_load((CONF / "sweep" / "grid.yaml").read_text())["hydra"]["sweeper"][
            "params"
        ].items()
    }
    assert len(jobs) == 8 == len(list(itertools.product(*axes.values())))
    swept = {tuple(o for o in job["overrides"] if o.split("=")[0] in axes) for job in jobs}
    assert swept == {
        tuple(f"{k}={v}" for k, v in zip(axes, values)) for values in itertools.product(*axes.values())
    }
    [sweep_id] = {job["sweep"]["id"] for job in jobs}
    assert sorted(job["sweep"]["job"] for job in jobs) == list(range(8))
    for wandb_file in sweep.glob("*/wandb/offline-run-*/run-*.wandb"):
        assert sweep_id.encode() in wandb_file.read_bytes()  # the W&B group is the sweep id

    summary = textgym("sweep-summary", "sweep", cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    rows = summary_rows(sweep)
    assert len(rows) == 8 and list(rows[0])[:5] == ["jobs", *axes, "seeds"]  # no seed axis: one job each
    success = [float(r["success_rate"]) for r in rows]
    assert success == sorted(success, reverse=True)
    assert sorted(success) == sorted(job["metrics"]["success_rate"] for job in jobs)
    assert f"| {rows[0]['jobs']} |" in (sweep / "summary.md").read_text().splitlines()[6]
    with Image.open(sweep / "summary.png") as image:
        plotted = json.loads(image.text["Description"])
    assert set(plotted["values"]) == set(axes) and sorted(plotted["objective"]) == sorted(success)


def test_optuna_sweep_of_three_trials(tmp_path: Path) -> None:
    run = textgym(
        "train",
        "-m",
        "sweep=optuna_tabular",
        "hydra.sweeper.n_trials=3",
        *QUICK,
        "logger=none",
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    jobs = results(tmp_path / "sweep")
    assert len(jobs) == 3
    alphas = [
        float(o.split("=")[1]) for job in jobs for o in job["overrides"] if o.startswith("algorithm.alpha=")
    ]
    assert len(set(alphas)) == 3 and all(0.01 <= a <= 1.0 for a in alphas)  # drawn from the search space
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(job["metrics"]["success_rate"] for job in jobs)


def test_submitit_local_launcher(tmp_path: Path) -> None:
    run = textgym(
        "train",
        "-m",
        "algorithm.gamma=0.9,0.99",
        "launcher=submitit_local",
        *QUICK,
        "logger=none",
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    jobs = results(tmp_path / "sweep")
    assert sorted(job["sweep"]["job"] for job in jobs) == [0, 1]
    assert (
        len(list((tmp_path / "sweep" / ".submitit").glob("*/*_log.out"))) == 2
    )  # each ran as a submitit job


@pytest.mark.parametrize(
    ("sweep", "overrides"),
    [("grid", []), ("optuna_tabular", []), ("optuna_ppo", ["algorithm=ppo", "policy=llm"])],
)
def test_sweeps_search_fields_that_exist(sweep: str, overrides: list[str]) -> None:
    store_schemas()
    with initialize_config_module("textgym.conf", version_base="1.3"):
        cfg = compose("config", [f"sweep={sweep}", *overrides], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params and all(OmegaConf.select(cfg, key, default="missing") != "missing" for key in params), list(
        params
    )


@pytest.mark.parametrize(
    ("launcher", "target"),
    [("joblib", "JoblibLauncher"), ("submitit_local", "LocalLauncher"), ("slurm", "SlurmLauncher")],
)
def test_launcher_configs_select_their_plugin(launcher: str, target: str) -> None:
    store_schemas()
    with initialize_config_module("textgym.conf", version_base="1.3"):
        cfg = compose("config", [f"launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(target)


def _job(directory: Path, job: int, overrides: list[str], success: float | None) -> None:
    directory.mkdir(parents=True)
    metrics = {"episodes": 10, "success_rate": success, "mean_return": None if success is None else success - 0.5}
    (directory / "results.json").write_text(
        json.dumps(
            {
                "env": "e",
                "algorithm": "q_learning",
                "overrides": overrides,
                "sweep": {"id": "s", "job": job},
                "metrics": metrics,
            }
        )
    )


def test_sweep_summary_keeps_what_varies_and_ranks_by_the_objective(tmp_path: Path) -> None:
    for job, (alpha, success) in enumerate([("0.1", 0.2), ("0.3", 0.9), ("0.5", 0.4)]):
        _job(
            tmp_path / str(job),
            job,
            [f"algorithm.alpha={alpha}", "sweep=grid", "algorithm.episodes=300"],
            success,
        )
    run = textgym("sweep-summary", ".", "--objective", "mean_return", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = summary_rows(tmp_path)
    assert [r["jobs"] for r in rows] == ["1", "2", "0"] and list(rows[0]) == [
        "jobs", "algorithm.alpha", "seeds", "mean_return", "mean_return_low", "mean_return_high", "success_rate",
    ]
    assert rows[0]["seeds"] == "1" and rows[0]["mean_return_low"] == ""  # one seed: no interval
    run = textgym("sweep-summary", ".", "--objective", "regret", cwd=tmp_path)
    assert run.returncode == 2 and "choose one of" in run.stderr
    (tmp_path / "empty").mkdir()
    run = textgym("sweep-summary", "empty", cwd=tmp_path)
    assert run.returncode == 2 and "no readable results.json" in run.stderr


def test_sweep_summary_groups_seeds_ranks_nan_last_and_skips_unreadable_files(tmp_path: Path) -> None:
    successes = {"0.1": [0.2, 0.4, 0.3], "0.3": [0.9, 0.7, 0.8], "0.5": [None, 1.0, 1.0]}  # a NaN seed at 0.5
    for job, (alpha, seed) in enumerate(itertools.product(successes, range(3))):
        _job(tmp_path / str(job), job, [f"algorithm.alpha={alpha}", f"seed={seed}"], successes[alpha][seed])
    (tmp_path / "9").mkdir()
    (tmp_path / "9" / "results.json").write_text('{"overrides": ["algorithm.alpha=0.7"], "metr')  # killed mid-write
    (tmp_path / "10").mkdir()
    (tmp_path / "10" / "results.json").write_text('{"overrides": ["algorithm.alpha=0.9"]}')  # no metrics
    run = textgym("sweep-summary", ".", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert str(Path("9") / "results.json") in run.stderr and str(Path("10") / "results.json") in run.stderr
    rows = summary_rows(tmp_path)
    assert [(r["algorithm.alpha"], r["jobs"], r["seeds"]) for r in rows] == [
        ("0.3", "3 4 5", "3"), ("0.1", "0 1 2", "3"), ("0.5", "6 7 8", "3")  # by mean; NaN last
    ]
    assert float(rows[0]["success_rate"]) == pytest.approx(0.8)
    half = 4.302653 * 0.1 / 3**0.5  # t(0.975, 2) x sd / sqrt(3)
    assert float(rows[0]["success_rate_low"]) == pytest.approx(0.8 - half, abs=1e-5)
    assert float(rows[0]["success_rate_high"]) == pytest.approx(0.8 + half, abs=1e-5)
    assert rows[2]["success_rate"] == "nan" and list(rows[0])[:3] == ["jobs", "algorithm.alpha", "seeds"]
    text = (tmp_path / "summary.md").read_text()
    assert "9 jobs in 3 configurations" in text and "Skipped" in text
    assert str(Path("9") / "results.json") in text
