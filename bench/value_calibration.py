"""SmolLM2's value head against exact values on text FrozenLake, before and after PPO training.

Trains as bench/learn_smollm2.py does (same env, PPO settings and stopping rule) and measures the value
head on every state visited by a sampled evaluation before training, at PPO's own evaluations (every
``--eval-every`` updates) and after training: mean absolute error and Pearson correlation against

* V*: the optimal values for PPO's gamma (0.95), infinite-horizon (the head sees no clock), and
* V^pi: the exact values, same gamma, of the sampling policy the evaluation recorded, within the
  steps each visit had left (what PPO's truncated returns estimate).

Prints the figures and the binned calibration curve after training; ``--plots DIR`` also writes the
calibration plots.

    python bench/value_calibration.py [--updates 30] [--seed 0] [--plots DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from learn_smollm2 import LAKE, Report, ppo_config

from textgym.algorithms.callbacks import Callback, TrainingContext
from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.algorithms.ppo import PPO
from textgym.algorithms.value_calibration import ValueCalibration, ValueRecorder, value_calibration
from textgym.plots import calibration_figure
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig
from textgym.plots import plt


def measure(policy: LLMPolicy, truth: GroundTruth, episodes: int, seed: int) -> tuple[float, ValueCalibration, int]:
    """Sampled success, the value head's calibration over the visited states, and the number of steps."""
    recorder = ValueRecorder(policy)
    success = evaluate(vector_env(LAKE, 32), recorder, episodes, seed=seed).metrics()["success_rate"]
    return success, value_calibration(recorder, truth), len(recorder.states)


def line(label: str, success: float, report: ValueCalibration, steps: int) -> str:
    m = report.metrics()
    return (f"{label:<22} {success:7.2f} {m['value_mae']:8.3f} {m['value_correlation']:7.2f} "
            f"{m['value_mae_pi']:9.3f} {m['value_correlation_pi']:8.2f} {steps:7d}")


HEADER = f"{'':<22} {'success':>7} {'MAE V*':>8} {'r V*':>7} {'MAE V^pi':>9} {'r V^pi':>8} {'steps':>7}"


class PrintCalibration(Callback):
    """Prints the value head's figures at each of PPO's evaluations."""

    def on_eval(self, ctx: TrainingContext) -> None:
        e = ctx.last_eval
        print(f"  eval after update {ctx.update}: success {e['success_rate']:.2f}  value MAE/r vs V* "
              f"{e['value_mae']:.3f}/{e['value_correlation']:.2f}  vs V^pi {e['value_mae_pi']:.3f}/"
              f"{e['value_correlation_pi']:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.95, help="stop once the rollout success reaches it")
    parser.add_argument("--episodes", type=int, default=64, help="evaluation episodes")
    parser.add_argument("--eval-every", type=int, default=5, help="updates between PPO's evaluations")
    parser.add_argument("--plots", type=Path, default=None, help="write the calibration plots here")
    args = parser.parse_args()

    config = ppo_config(args.updates, eval_every=args.eval_every, eval_episodes=args.episodes)
    truth = GroundTruth.of(LAKE(), gamma=config.gamma)
    start = time.perf_counter()
    torch.manual_seed(args.seed)  # the value head's initial weights
    policy = LLMPolicy(LLMPolicyConfig(seed=args.seed))
    before = measure(policy, truth, args.episodes, seed=12345)
    print(f"before training: {line('', *before).strip()}  ({time.perf_counter() - start:.0f} s)", flush=True)

    trained = time.perf_counter()
    PPO(config, seed=args.seed).learn(LAKE, policy, [Report(args.target, trained), PrintCalibration()])
    after = measure(policy, truth, args.episodes, seed=54321)

    print(f"\nSmolLM2-135M + LoRA value head vs exact values, text FrozenLake 4x4 not slippery, 12 steps, "
          f"bump -0.05, gamma {config.gamma}, seed {args.seed}; {args.episodes} sampled episodes each")
    print(HEADER)
    print(line("before (zero-shot)", *before))
    print(line("after training", *after))
    print("\ncalibration after training (bins of the value head's prediction):")
    print(f"{'predicted':>10} {'V*':>7} {'V^pi':>7} {'steps':>6}")
    optimal, pi = after[1].optimal, after[1].policy
    for row in zip(optimal.predicted, optimal.true, pi.true, optimal.counts):
        print(f"{row[0]:10.3f} {row[1]:7.3f} {row[2]:7.3f} {row[3]:6d}")
    print(f"took {(time.perf_counter() - start) / 60:.1f} wall-clock minutes")
    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
        for name, (_, report, _) in (("before", before), ("after", after)):
            fig = calibration_figure(report, f"SmolLM2 value head, {name} PPO")
            fig.savefig(args.plots / f"value_calibration_{name}.png", dpi=120)
            plt.close(fig)


if __name__ == "__main__":
    main()
