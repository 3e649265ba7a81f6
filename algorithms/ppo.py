"""Multi-turn PPO for LLM policies on Accelerate, read top to bottom like CleanRL's ``ppo.py``.

One sample is one env step (a turn): the policy's prompt in that state, its choice, the choice's
log-prob and the state's value. Advantages are GAE over turns; the update is PPO's clipped surrogate
with a clipped value loss, an entropy bonus and an optional KL penalty to the reference policy (the LM
with its adapters disabled).

Accelerate carries the same code to one CPU, several GPUs (``accelerate launch``) and several CPU
processes (gloo): each process steps its own ``num_envs`` envs, the trainable part of the policy is
wrapped in DDP, and advantages are whitened over every process's batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from torch import Tensor

from textgym.algorithms.callbacks import Callback, CallbackList, TrainingContext
from textgym.algorithms.evaluation import Episode, evaluate, slot_info, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.algorithms.ppo_config import LRSchedule, PPOConfig
from textgym.algorithms.ppo_functions import explained_variance, gae, policy_loss, value_loss, whiten
from textgym.algorithms.ppo_memory import MAX_AUTO_BUDGET, plan_memory
from textgym.algorithms.value_calibration import ValueRecorder, value_calibration
from textgym.policies.llm import Choice, Decision, LLMPolicy
from textgym.policies.llm_prompts import History, Prompt

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """An update's turns, flattened: what PPO's loss needs of each."""

    prompts: list[Prompt]
    choices: list[Choice]
    logprobs: Tensor
    values: Tensor
    advantages: Tensor
    returns: Tensor

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, index: Sequence[int]) -> Batch:
        """The turns at ``index``."""
        rows = torch.as_tensor(index, dtype=torch.long)
        return Batch([self.prompts[i] for i in index], [self.choices[i] for i in index], self.logprobs[rows],
                     self.values[rows], self.advantages[rows], self.returns[rows])


class PPO:
    """PPO over turns for an :class:`~textgym.policies.llm.LLMPolicy` (``algorithm=ppo``)."""

    def __init__(self, config: PPOConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.accelerator: Accelerator | None = None
        self.model: torch.nn.Module | None = None
        self.rng = torch.Generator()

    # ---- set-up ---------------------------------------------------------------------------------
    def setup(self, policy: LLMPolicy, env_fn: Callable[[], gym.Env] | None = None) -> torch.optim.Optimizer:
        """Create the Accelerator, move the policy to its device and prepare the trainable part and optimizer.

        Given the env, first estimate the run's peak memory from the model's shapes and the env's prompts: pick
        the update's token budget (when automatic) and fail in one line, naming the setting, if it cannot fit.
        """
        cfg = self.config
        self.accelerator = acc = Accelerator(
            cpu=cfg.cpu, mixed_precision=cfg.mixed_precision.value,
            # rollouts run a different number of forward passes on each process: no collectives in forward
            kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
        )
        set_seed(self.seed + acc.process_index)
        self.rng.manual_seed(self.seed + acc.process_index)
        policy.generator.manual_seed(self.seed + acc.process_index)
        policy.to(acc.device)
        self.token_budget = cfg.token_budget or MAX_AUTO_BUDGET
        if env_fn is not None:
            self.token_budget = plan_memory(policy, cfg, env_fn, acc.device).token_budget
        adapters, value_head = policy.trainable_parameters()
        optimizer = torch.optim.AdamW(
            [{"params": adapters, "lr": cfg.learning_rate}, {"params": value_head, "lr": cfg.value_learning_rate}],
            eps=1e-5, weight_decay=0.0,
        )
        self.model, optimizer = acc.prepare(policy.network, optimizer)
        return optimizer

    def set_learning_rates(self, optimizer: torch.optim.Optimizer, update: int) -> float:
        """The schedule's rates for ``update`` (1-based); returns the fraction of the initial rates."""
        cfg = self.config
        frac = 1.0 if cfg.lr_schedule is LRSchedule.constant else 1.0 - (update - 1) / cfg.total_updates
        for group, lr in zip(optimizer.param_groups, (cfg.learning_rate, cfg.value_learning_rate)):
            group["lr"] = frac * lr
        return frac

    # ---- the loop -------------------------------------------------------------------------------
    def learn(self, env_fn: Callable[[], gym.Env], policy: LLMPolicy, callbacks: Sequence[Callback] = ()) -> LLMPolicy:
        if not isinstance(policy, LLMPolicy):
            raise TypeError(f"PPO trains an LLM policy (policy=llm), not {type(policy).__name__}")
        cfg = self.config
        optimizer = self.setup(policy, env_fn)
        acc = self.accelerator
        callback = CallbackList(callbacks if acc.is_main_process else [])
        ctx = TrainingContext(total_episodes=0, total_env_steps=cfg.total_updates * cfg.batch_size * acc.num_processes)
        start = self.load_checkpoint(policy, optimizer, ctx) if cfg.resume else 0
        envs = vector_env(env_fn, cfg.num_envs)
        history = History(policy.config.history)  # the rollout envs' own, apart from evaluations'
        observations, infos = envs.reset(seed=self.seed + 10_000 * start + cfg.num_envs * acc.process_index)
        tracker = EpisodeTracker(cfg.num_envs, cfg.transcripts)
        # on envs with exact ground truth, evaluations also measure the value head against it
        truth = GroundTruth.of(envs.envs[0], cfg.gamma) if cfg.eval_every and acc.is_main_process else None
        callback.on_training_start(ctx)

        for update in range(start + 1, cfg.total_updates + 1):
            frac = self.set_learning_rates(optimizer, update)
            began, tokens_before = time.perf_counter(), policy.tokens_forwarded
            T, N = cfg.num_steps, cfg.num_envs
            prompts: list[Prompt] = []
            choices: list[Choice] = []
            logprobs, values, rewards, dones = (torch.zeros(T, N) for _ in range(4))
            memo: dict = {}  # per distinct query, while the weights stay put
            keep_going = True
            with torch.no_grad(), acc.autocast():
                for t in range(T):
                    decision = policy.decide(observations, [slot_info(infos, i) for i in range(N)], memo=memo,
                                             history=history)
                    prompts += decision.prompts
                    choices += decision.choices
                    logprobs[t], values[t] = decision.logprobs.float().cpu(), decision.values.float().cpu()
                    observations, reward, terminated, truncated, infos = envs.step(decision.actions)
                    rewards[t] = torch.as_tensor(reward, dtype=torch.float32)
                    dones[t] = torch.as_tensor(terminated | truncated, dtype=torch.float32)
                    for episode in tracker.step(decision, reward, terminated | truncated, infos):
                        ctx.episode += 1
                        ctx.last_episode = episode
                        keep_going &= callback.on_episode_end(ctx)
                    ctx.env_steps += N
                next_value = policy.values(history.prompts(observations, [slot_info(infos, i) for i in range(N)]))
            advantages, returns = gae(rewards, values, dones, next_value.float().cpu(), cfg.gamma, cfg.gae_lambda)
            rollout_seconds = time.perf_counter() - began

            batch = Batch(prompts, choices, logprobs.flatten(), values.flatten(), advantages.flatten(), returns.flatten())
            metrics = self.update(policy, optimizer, batch)
            seconds = time.perf_counter() - began
            metrics |= {
                "train/learning_rate_fraction": frac,
                "train/explained_variance": explained_variance(batch.values, batch.returns),
                "time/rollout_seconds": rollout_seconds,
                "time/update_seconds": seconds - rollout_seconds,
                "time/env_steps_per_second": T * N / rollout_seconds,
                "time/tokens_per_second": (policy.tokens_forwarded - tokens_before) / seconds,
                "rollout/distinct_prompts": len(memo),
            }
            ctx.update = update
            ctx.transcripts = tracker.take_transcripts()
            callback.on_log(ctx, metrics)
            if cfg.eval_every and update % cfg.eval_every == 0 and acc.is_main_process:
                eval_env = vector_env(env_fn, min(cfg.num_envs, cfg.eval_episodes))
                player = policy if truth is None else ValueRecorder(policy)
                ctx.last_eval = evaluate(eval_env, player, cfg.eval_episodes, seed=self.seed + 1_000 * update).metrics()
                eval_env.close()
                if truth is not None:
                    ctx.value_calibration = value_calibration(player, truth)
                    ctx.last_eval |= ctx.value_calibration.metrics()
                callback.on_eval(ctx)
            if cfg.checkpoint_every and (update % cfg.checkpoint_every == 0 or update == cfg.total_updates):
                self.save_checkpoint(policy, optimizer, ctx)
            if not self.everyone_agrees(keep_going):
                break

        callback.on_training_end(ctx)
        envs.close()
        return policy

    def update(self, policy: LLMPolicy, optimizer: torch.optim.Optimizer, batch: Batch) -> dict[str, float]:
        """PPO's epochs over ``batch`` (this process's share); returns the mean losses and diagnostics.

        Each minibatch runs as micro-batches of at most ``token_budget`` tokens whose losses are weighted by their
        share of the minibatch, so their summed gradients are the one-pass gradient; one clip and step follow.
        """
        cfg, acc = self.config, self.accelerator
        advantages = batch.advantages
        if cfg.normalize_advantages:
            advantages = whiten(advantages, acc.gather(advantages.to(acc.device)).cpu())
        reference = {} if cfg.kl_coef else None  # the reference never changes: one pass per distinct query
        minibatch = len(batch) // cfg.num_minibatches
        units = [policy.forward_unit(p, c) for p, c in zip(batch.prompts, batch.choices)]
        adapters, value_head = policy.trainable_parameters()
        stats: dict[str, list[float]] = defaultdict(list)
        policy.forward_module = self.model
        try:
            for _ in range(cfg.update_epochs):
                order = torch.randperm(len(batch), generator=self.rng).tolist()
                epoch_kl = []
                for start in range(0, len(batch), minibatch):
                    index = order[start : start + minibatch]
                    parts = micro_batches([units[i] for i in index], self.token_budget)
                    sums: dict[str, float] = defaultdict(float)
                    for number, part in enumerate(parts):
                        rows = [index[i] for i in part]
                        weight = len(rows) / len(index)
                        last = number == len(parts) - 1  # gradients are all-reduced on the last micro-batch only
                        with (contextlib.nullcontext() if last else acc.no_sync(self.model)), acc.autocast():
                            terms = ppo_loss(cfg, policy, batch.take(rows), advantages[rows], reference, acc.device)
                            acc.backward(weight * terms.pop("loss"))
                        for key, value in terms.items():
                            sums[key] += weight * float(value)
                    acc.clip_grad_norm_(adapters + value_head, cfg.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                    epoch_kl.append(sums["approx_kl"])
                    stats["train/micro_batches"].append(len(parts))
                    for key, value in sums.items():
                        stats[f"train/{key}"].append(value)
                if cfg.target_kl is not None:
                    mean_kl = acc.reduce(torch.tensor(np.mean(epoch_kl), device=acc.device), reduction="mean")
                    if float(mean_kl) > cfg.target_kl:
                        break
        finally:
            policy.forward_module = policy.network
        return {key: float(np.mean(values)) for key, values in stats.items()}

    def everyone_agrees(self, keep_going: bool) -> bool:
        """Whether every process wants to go on (a callback on the main process may stop the run)."""
        stop = torch.tensor(0.0 if keep_going else 1.0, device=self.accelerator.device)
        return float(self.accelerator.reduce(stop, reduction="sum")) == 0.0

    # ---- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self, policy: LLMPolicy, optimizer: torch.optim.Optimizer, ctx: TrainingContext) -> Path:
        """Adapters, value head, optimizer, counters and every process's RNG states, written atomically."""
        acc, root = self.accelerator, Path(self.config.checkpoint_dir)
        final = root / f"update-{ctx.update:06d}"
        partial = root / f".{final.name}.partial"
        if acc.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            policy.save(partial)
            torch.save(optimizer.state_dict(), partial / "optimizer.pt")
            counters = {"update": ctx.update, "episode": ctx.episode, "env_steps": ctx.env_steps}
            (partial / "counters.json").write_text(json.dumps(counters))
        acc.wait_for_everyone()
        torch.save(self.rng_states(policy), partial / f"rng-{acc.process_index}.pt")
        acc.wait_for_everyone()
        if acc.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            partial.rename(final)
            for old in sorted(root.glob("update-*"))[: -self.config.keep_checkpoints]:
                shutil.rmtree(old)
            log.info("checkpoint %s", final)
        acc.wait_for_everyone()
        return final

    def load_checkpoint(self, policy: LLMPolicy, optimizer: torch.optim.Optimizer, ctx: TrainingContext) -> int:
        """Restore the newest checkpoint, if any; returns the update it was taken after (0 if none)."""
        found = sorted(Path(self.config.checkpoint_dir).glob("update-*"))
        if not found:
            log.warning("resume: no checkpoint in %s, starting afresh", self.config.checkpoint_dir)
            return 0
        directory = found[-1]
        policy.load_weights(directory)
        optimizer.load_state_dict(torch.load(directory / "optimizer.pt", map_location=self.accelerator.device))
        counters = json.loads((directory / "counters.json").read_text())
        ctx.update, ctx.episode, ctx.env_steps = counters["update"], counters["episode"], counters["env_steps"]
        rng = directory / f"rng-{self.accelerator.process_index}.pt"
        if rng.exists():
            self.set_rng_states(policy, torch.load(rng, weights_only=False))
        log.info("resumed from %s", directory)
        return counters["update"]

    def rng_states(self, policy: LLMPolicy) -> dict:
        return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                "ppo": self.rng.get_state(), "policy": policy.generator.get_state()}

    def set_rng_states(self, policy: LLMPolicy, states: dict) -> None:
        random.setstate(states["python"])
        np.random.set_state(states["numpy"])
        torch.set_rng_state(states["torch"])
        self.rng.set_state(states["ppo"])
        policy.generator.set_state(states["policy"])


class EpisodeTracker:
    """Returns, lengths and transcripts of the episodes running in the rollout envs."""

    def __init__(self, num_envs: int, keep: int) -> None:
        self.returns, self.lengths = np.zeros(num_envs), np.zeros(num_envs, dtype=int)
        self.lines: list[list[str]] = [[] for _ in range(num_envs)]
        self.keep = keep
        self.transcripts: list[str] = []

    def step(self, decision: Decision, rewards: np.ndarray, ended: np.ndarray, infos: dict) -> list[Episode]:
        """Account one step; the episodes that it finished."""
        self.returns += rewards
        self.lengths += 1
        finished = []
        for i, (prompt, action) in enumerate(zip(decision.prompts, decision.actions)):
            self.lines[i].append(f"{prompt.text}\n> {action}   (reward {rewards[i]:+.2f})")
            if not ended[i]:
                continue
            final = slot_info(infos["final_info"], i)
            finished.append(Episode(float(self.returns[i]), int(self.lengths[i]), bool(final["success"]),
                                    int(final["invalid_actions"])))
            if len(self.transcripts) < self.keep:
                outcome = "success" if final["success"] else "failure"
                self.transcripts.append("\n\n".join(self.lines[i]) + f"\n\n[{outcome}, return {self.returns[i]:.2f}]")
            self.returns[i], self.lengths[i], self.lines[i] = 0.0, 0, []
        return finished

    def take_transcripts(self) -> list[str]:
        """The transcripts gathered since the last call."""
        taken, self.transcripts = self.transcripts, []
        return taken


def micro_batches(units: Sequence[tuple[Hashable, int]], budget: int) -> list[list[int]]:
    """Positions of samples, given each one's forward unit and token count, grouped into micro-batches of at most
    ``budget`` tokens; the samples of one unit stay together (one forward), and a unit over budget runs alone."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    tokens: dict[Hashable, int] = {}
    for position, (unit, count) in enumerate(units):
        members[unit].append(position)
        tokens[unit] = count
    parts: list[list[int]] = []
    used = 0
    for unit, positions in members.items():
        if parts and used + tokens[unit] <= budget:
            parts[-1] += positions
            used += tokens[unit]
        else:
            parts.append(list(positions))
            used = tokens[unit]
    return parts


def ppo_loss(
    cfg: PPOConfig, policy: LLMPolicy, mb: Batch, advantages: Tensor, reference: dict | None, device: torch.device
) -> dict[str, Tensor]:
    """PPO's loss on the turns ``mb`` (a mean over them, key ``loss``), with its terms and diagnostics (detached)."""
    new = policy.evaluate(mb.prompts, mb.choices, reference_memo=reference)
    pg_loss, approx_kl, clip_fraction = policy_loss(
        new.logprobs.float(), mb.logprobs.to(device), advantages.to(device), cfg.clip_coef
    )
    v_loss = value_loss(new.values.float(), mb.values.to(device), mb.returns.to(device),
                        cfg.clip_coef if cfg.clip_value_loss else None)
    entropy = new.entropies.float().mean()
    terms = {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy, "approx_kl": approx_kl,
             "clip_fraction": clip_fraction}
    loss = pg_loss - cfg.entropy_coef * entropy + cfg.value_coef * v_loss
    if new.kl is not None:
        terms["kl_to_reference"] = new.kl.float().mean()
        loss = loss + cfg.kl_coef * terms["kl_to_reference"]
    return {"loss": loss} | {key: value.detach() for key, value in terms.items()}
