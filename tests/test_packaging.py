"""A plain wheel install (not editable) works from another directory, Hydra configs included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_install_runs_from_another_directory(tmp_path: Path) -> None:
    dist, site = tmp_path / "dist", tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w", dist, REPO],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    )
    assert "would be ignored" not in build.stdout + build.stderr  # the data dirs are declared, not guessed
    [wheel] = dist.glob("textgym-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel], check=True,
                   capture_output=True)
    assert not (site / "envs").exists() and not (site / "conf").exists()  # no generic top-level names
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import textgym, textgym.conf; print(textgym.__file__); print(textgym.conf.__file__)"
    where = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert where.stdout.count(str(site)) == 2, where.stdout + where.stderr
    run = subprocess.run(
        [sys.executable, "-m", "textgym", "train", "logger=none", "algorithm.episodes=200", "eval.episodes=20",
         "hydra.run.dir=out"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "results.json").exists()
