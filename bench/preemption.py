"""What a killed run costs, per algorithm: the work SIGKILL loses and the time SIGTERM takes to stop a run.

Each algorithm runs through the installed ``textgym train`` (defaults, except a budget long enough to be
killed and the checkpoint interval given). The script waits for two checkpoints, which gives the wall time
of one checkpoint interval: what a SIGKILL loses at most. Then it sends SIGTERM and times the exit (the
run finishes its iteration, writes a checkpoint, finishes the W&B run in offline mode).

    python bench/preemption.py            # tabular, DQN, PPO (PPO on a tiny model built here)
    python bench/preemption.py --smollm2  # PPO on the embedded SmolLM2 too (minutes per interval)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

TEXTGYM = str(Path(sys.executable).parent / "textgym")
RUNS = {
    "q_learning (episodes)": (["algorithm.episodes=5000000", "algorithm.checkpoint_every=1000"], 1000),
    "dqn (env steps)": (["algorithm=dqn", "algorithm.total_timesteps=5000000", "algorithm.checkpoint_every=10000"], 10000),
    "ppo, tiny LM (updates)": (["policy=llm", "policy.model=TINY", "algorithm=ppo", "algorithm.total_updates=100000",
                                "algorithm.checkpoint_every=10", "env.kwargs.is_slippery=false"], 10),
}


def checkpoint_times(root: Path, process: subprocess.Popen, count: int, timeout: float) -> list[float]:
    """The monotonic times at which the first ``count`` checkpoints appeared."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"fewer than {count} checkpoints: {process.communicate()[1][-1500:]}")
        if root.is_dir():
            for path in root.iterdir():
                if not path.name.startswith("."):
                    seen.setdefault(path.name, time.monotonic())
        time.sleep(0.02)
    return sorted(seen.values())


def measure(name: str, args: list[str], every: int, scratch: Path) -> tuple[str, int, float, float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"WANDB_MODE": "offline", "HOME": str(scratch)}
    run_dir = scratch / name.split()[0].replace(",", "")
    process = subprocess.Popen([TEXTGYM, "train", *args, f"hydra.run.dir={run_dir}"], cwd=scratch, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first, second = checkpoint_times(run_dir / "checkpoints", process, 2, timeout=1800)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=900)
    return name, every, second - first, time.monotonic() - sent, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smollm2", action="store_true", help="also PPO on the embedded SmolLM2 (FrozenLake)")
    args = parser.parse_args()
    from tiny_llm import save_tiny

    with tempfile.TemporaryDirectory(prefix="textgym-preemption-") as scratch:
        scratch = Path(scratch)
        save_tiny(scratch / "tiny")
        runs = {k: ([a.replace("TINY", str(scratch / "tiny")) for a in v[0]], v[1]) for k, v in RUNS.items()}
        if args.smollm2:
            runs["ppo, SmolLM2 (updates)"] = (["policy=llm", "algorithm=ppo", "algorithm.checkpoint_every=1",
                                               "env.kwargs.is_slippery=false", "env.max_episode_steps=12"], 1)
        print(f"{'algorithm':26} {'checkpoint every':>16} {'SIGKILL loses at most':>22} {'SIGTERM to exit':>16} {'exit':>5}")
        for name, (overrides, every) in runs.items():
            name, every, interval, stop, code = measure(name, overrides, every, scratch)
            print(f"{name:26} {every:>16} {interval:>20.2f} s {stop:>14.2f} s {code:>5}", flush=True)


if __name__ == "__main__":
    main()
