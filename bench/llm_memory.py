"""Peak memory and time of the LLM policy's rollout and PPO update at the default settings, per env, side by side
with the bare model's forward + backward of the same tokens.

For each env (default settings of ``textgym train env=<env> policy=llm algorithm=ppo``), in separate
subprocesses so that peaks do not mix (each reads its own ``ru_maxrss``):

* ``rollout``: one rollout of ``num_envs * num_steps`` turns (no gradients); the turns are saved for the next two;
* ``update``: ``PPO.setup`` (the memory plan) and one ``PPO.update`` on those turns;
* ``floor``: the policy's own forward + backward of those turns in the same micro-batches and epochs, without
  PPO's losses, clipping and optimizer steps;
* ``bare``: the plain transformers model (no adapters, caches or value head), every weight trainable, forward +
  backward of the same token sequences (instructions prefix, prompt and the trie nodes of its candidates packed
  after it, as one causal sequence per distinct state) in batches of ``--bare-tokens`` (1024), ``update_epochs``
  times.

Goals: every peak within 8 GB; the update's time at most 1.5x the forward + backward of the same tokens
(``update/floor``; ``update/bare`` shows what the caches and the layer split save over the plain model). The
ratios are of CPU seconds (each measurement's own process time, every thread), which a shared machine's load
does not inflate as it does wall seconds; wall seconds are printed too.

    python bench/llm_memory.py [--envs customer_service blocks_world wordle frozenlake] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

GB = 1024**3
ENVS = ["customer_service", "blocks_world", "wordle", "frozenlake"]


def peak_rss() -> int:
    """This process's peak resident set size in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(began: tuple[float, float]) -> tuple[float, float]:
    """Wall and CPU seconds since ``began``."""
    wall, cpu = clock()
    return wall - began[0], cpu - began[1]


def compose(env: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from textgym.factory import store_schemas

    store_schemas()
    with initialize_config_module("textgym.conf", version_base="1.3"):
        return hydra_compose("config", overrides=[f"env={env}", "policy=llm", "algorithm=ppo", *overrides])


def build(env: str, overrides: list[str]):
    """The env factory, policy and PPO of the default run."""
    from textgym.factory import make_algorithm, make_env, make_policy
    from textgym.settings import check_reward

    cfg = compose(env, overrides)
    env_fn = partial(make_env, cfg.env, check_reward(cfg.reward))
    return env_fn, make_policy(cfg.policy), make_algorithm(cfg.algorithm, seed=0)


def rollout(env: str, overrides: list[str], turns: Path) -> dict:
    from textgym.algorithms.evaluation import slot_info, vector_env
    from textgym.policies.llm_prompts import History

    env_fn, policy, ppo = build(env, overrides)
    cfg = ppo.config
    envs = vector_env(env_fn, cfg.num_envs)
    observations, infos = envs.reset(seed=0)
    history, memo = History(policy.config.history), {}
    prompts, choices, logprobs, values = [], [], [], []
    began = clock()
    with torch.no_grad():
        for _ in range(cfg.num_steps):
            decision = policy.decide(observations, [slot_info(infos, i) for i in range(cfg.num_envs)], memo=memo,
                                     history=history)
            prompts += decision.prompts
            choices += decision.choices
            logprobs.append(decision.logprobs)
            values.append(decision.values)
            observations, *_, infos = envs.step(decision.actions)
    seconds, cpu = since(began)
    torch.save({"prompts": prompts, "choices": choices, "logprobs": torch.cat(logprobs), "values": torch.cat(values)},
               turns)
    return {"seconds": seconds, "cpu": cpu, "turns": len(prompts), "distinct": len(memo), "peak": peak_rss()}


def turns_batch(turns: Path):
    from textgym.algorithms.ppo import Batch

    saved = torch.load(turns, weights_only=False)
    n = len(saved["prompts"])
    generator = torch.Generator().manual_seed(0)
    return Batch(saved["prompts"], saved["choices"], saved["logprobs"], saved["values"],
                 torch.randn(n, generator=generator), torch.randn(n, generator=generator))


def update(env: str, overrides: list[str], turns: Path) -> dict:
    env_fn, policy, ppo = build(env, overrides)
    optimizer = ppo.setup(policy, env_fn)
    batch = turns_batch(turns)
    began = clock()
    metrics = ppo.update(policy, optimizer, batch)
    seconds, cpu = since(began)
    units = {policy.forward_unit(p, c) for p, c in zip(batch.prompts, batch.choices)}
    # the same states as plain token sequences for the bare model: prefix, prompt, its candidates' trie nodes
    torch.save([policy._tokens(policy.chat.prefix(q.prompt.instructions)) + policy._row_ids(q) for q, _ in units],
               turns.with_suffix(".sequences.pt"))
    return {"seconds": seconds, "cpu": cpu, "peak": peak_rss(), "token_budget": ppo.token_budget,
            "estimate": ppo_estimate(policy, ppo, env_fn), "micro_batches": metrics["train/micro_batches"],
            "tokens": sum(n for _, n in units), "epochs": ppo.config.update_epochs}


def floor(env: str, overrides: list[str], turns: Path) -> dict:
    """The policy's own forward + backward of the same turns in the same micro-batches, without PPO's losses
    and steps (``-logprobs.mean() + values.mean()``): the floor PPO's bookkeeping adds to."""
    from textgym.algorithms.ppo import micro_batches

    env_fn, policy, ppo = build(env, overrides)
    ppo.setup(policy, env_fn)
    batch = turns_batch(turns)
    units = [policy.forward_unit(p, c) for p, c in zip(batch.prompts, batch.choices)]
    began = clock()
    for _ in range(ppo.config.update_epochs):
        for part in micro_batches(units, ppo.token_budget):
            mb = batch.take(part)
            evaluation = policy.evaluate(mb.prompts, mb.choices)
            (-evaluation.logprobs.mean() + evaluation.values.mean()).backward()
        policy.network.zero_grad()
    seconds, cpu = since(began)
    return {"seconds": seconds, "cpu": cpu, "peak": peak_rss()}


def ppo_estimate(policy, ppo, env_fn) -> int:
    from textgym.algorithms.ppo_memory import estimate_memory, probe_prompts

    sizes = probe_prompts(env_fn, policy)
    return estimate_memory(policy, sizes, ppo.token_budget, ppo.accelerator.device, ppo.config).peak


def bare(env: str, overrides: list[str], turns: Path, token_budget: int) -> dict:
    """The plain model's forward + backward over each distinct state's full token sequence, all weights trainable."""
    from textgym.algorithms.ppo import micro_batches
    from textgym.models import load_causal_lm

    cfg = compose(env, overrides)
    rows = torch.load(turns.with_suffix(".sequences.pt"))
    model, _ = load_causal_lm(cfg.policy.model)
    parts = micro_batches([(i, len(ids)) for i, ids in enumerate(rows)], token_budget)
    pad = torch.nn.utils.rnn.pad_sequence
    began = clock()
    for _ in range(cfg.algorithm.update_epochs):
        for part in parts:
            ids = pad([torch.tensor(rows[i]) for i in part], batch_first=True)
            mask = pad([torch.ones(len(rows[i]), dtype=torch.long) for i in part], batch_first=True)
            logits = model(input_ids=ids, attention_mask=mask).logits
            ((logits.logsumexp(-1) * mask).sum() / mask.sum()).backward()
            model.zero_grad(set_to_none=False)
    seconds, cpu = since(began)
    return {"seconds": seconds, "cpu": cpu, "peak": peak_rss(), "tokens": sum(len(r) for r in rows)}


def measure(kind: str, env: str, overrides: list[str], turns: Path, token_budget: int = 0) -> dict:
    """Run one measurement in a fresh interpreter; its JSON result."""
    command = [sys.executable, __file__, "--measure", kind, "--env", env, "--turns", str(turns),
               "--token-budget", str(token_budget), "--override", *overrides]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{kind} on {env} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=ENVS)
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides, e.g. policy.model=<dir>")
    parser.add_argument("--bare-tokens", type=int, default=1024,
                        help="most tokens per batch of the plain model (at the update's 4096 it passed 10.9 GB)")
    parser.add_argument("--no-bare", action="store_true", help="skip the plain model (the slowest measurement)")
    parser.add_argument("--measure", choices=["rollout", "update", "floor", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--env", help=argparse.SUPPRESS)
    parser.add_argument("--turns", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--token-budget", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.measure == "rollout":
        print(json.dumps(rollout(args.env, args.override, args.turns)))
        return
    if args.measure == "update":
        print(json.dumps(update(args.env, args.override, args.turns)))
        return
    if args.measure == "floor":
        print(json.dumps(floor(args.env, args.override, args.turns)))
        return
    if args.measure == "bare":
        print(json.dumps(bare(args.env, args.override, args.turns, args.token_budget)))
        return
    header = (f"{'env':18} {'turns':>5} {'states':>6} {'rollout GB':>10} {'update GB':>9} {'est. GB':>7} {'bare GB':>7} "
              f"{'budget':>6} {'micro':>5} {'rollout s':>9} {'update s':>8} {'floor s':>7} {'bare s':>7} "
              f"{'update CPU-s':>12} {'floor CPU-s':>11} {'bare CPU-s':>10} "
              f"{'update/floor':>12} {'update/bare':>11}")
    print(header, flush=True)
    for env in args.envs:
        with tempfile.TemporaryDirectory() as scratch:
            turns = Path(scratch) / "turns.pt"
            r = measure("rollout", env, args.override, turns)
            print(f"  {env} rollout: {json.dumps(r)}", flush=True)
            u = measure("update", env, args.override, turns)
            print(f"  {env} update: {json.dumps(u)}", flush=True)
            f = measure("floor", env, args.override, turns)
            print(f"  {env} floor: {json.dumps(f)}", flush=True)
            b = {"peak": float("nan"), "seconds": float("nan"), "cpu": float("nan")} if args.no_bare else measure(
                "bare", env, args.override, turns, args.bare_tokens)
        print(f"{env:18} {r['turns']:5d} {r['distinct']:6d} {r['peak'] / GB:10.2f} {u['peak'] / GB:9.2f} "
              f"{u['estimate'] / GB:7.2f} {b['peak'] / GB:7.2f} {u['token_budget']:6d} {u['micro_batches']:5.1f} "
              f"{r['seconds']:9.1f} {u['seconds']:8.1f} {f['seconds']:7.1f} {b['seconds']:7.1f} "
              f"{u['cpu']:12.1f} {f['cpu']:11.1f} {b['cpu']:10.1f} "
              f"{u['cpu'] / f['cpu']:11.2f}x {u['cpu'] / b['cpu']:10.2f}x",
              flush=True)
    print("goals: every peak <= 8 GB; update <= 1.5x the forward + backward of the same tokens (ratios of CPU "
          "seconds). floor: the policy's "
          "own forward + backward of the same turns and micro-batches; bare: the plain model's forward + backward of "
          "the same token sequences (prefix included, every weight trainable)")


if __name__ == "__main__":
    main()
