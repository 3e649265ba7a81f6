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
import logging
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

from textgym.algorithms import rng
from textgym.algorithms.base import Algorithm
from textgym.algorithms.evaluation import Episode, slot_info, vector_env
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


class PPO(Algorithm[PPOConfig, LLMPolicy]):
    """PPO over turns for an :class:`~textgym.policies.llm.LLMPolicy` (``algorithm=ppo``); one iteration is
    one update (a rollout, then PPO's epochs over it)."""

    policy_type = LLMPolicy
    policy_option = "an LLM policy (policy=llm)"
    unit = "updates"
    checkpoint_prefix = "update"

    def __init__(self, config: PPOConfig, seed: int = 0, checkpoint_dir=None, resume: bool = False) -> None:
        super().__init__(config, seed, checkpoint_dir, resume)
        self.accelerator: Accelerator | None = None
        self.model: torch.nn.Module | None = None
        self.rng = torch.Generator()

    def progress(self) -> int:
        return self.ctx.update

    def budget(self) -> int:
        return self.config.total_updates

    # ---- several processes ----------------------------------------------------------------------
    @property
    def is_main_process(self) -> bool:
        return self.accelerator is None or self.accelerator.is_main_process

    @property
    def process_index(self) -> int:
        return 0 if self.accelerator is None else self.accelerator.process_index

    def _barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def _any_process(self, flag: bool) -> bool:
        """Whether any process raises ``flag`` (a callback on the main process may stop the run, a signal may
        reach one process first)."""
        raised = torch.tensor(1.0 if flag else 0.0, device=self.accelerator.device)
        return float(self.accelerator.reduce(raised, reduction="sum")) > 0.0

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

    def _setup(self) -> None:
        cfg = self.config
        self.optimizer = self.setup(self.policy, self.env_fn)
        self.ctx.total_env_steps = cfg.total_updates * cfg.batch_size * self.accelerator.num_processes
        self.envs = self.closing(vector_env(self.env_fn, cfg.num_envs))
        self.history = History(self.policy.config.history)  # the rollout envs' own, apart from evaluations'
        self.tracker = EpisodeTracker(cfg.num_envs, cfg.transcripts)
        # on envs with exact ground truth, evaluations also measure the value head against it
        self.truth = GroundTruth.of(self.envs.envs[0], cfg.gamma) if cfg.eval_every and self.is_main_process else None
        self.observations: list[str] | None = None

    def set_learning_rates(self, optimizer: torch.optim.Optimizer, update: int) -> float:
        """The schedule's rates for ``update`` (1-based); returns the fraction of the initial rates."""
        cfg = self.config
        frac = 1.0 if cfg.lr_schedule is LRSchedule.constant else 1.0 - (update - 1) / cfg.total_updates
        for group, lr in zip(optimizer.param_groups, (cfg.learning_rate, cfg.value_learning_rate)):
            group["lr"] = frac * lr
        return frac

    # ---- one update -----------------------------------------------------------------------------
    def _iterate(self) -> bool:
        cfg, acc, policy, ctx, envs, history = self.config, self.accelerator, self.policy, self.ctx, self.envs, self.history
        callback, update = self.callback, ctx.update + 1
        if self.observations is None:  # the first update of this process's run (a resumed one reseeds its envs)
            self.observations, self.infos = envs.reset(seed=self.seed + 10_000 * ctx.update + cfg.num_envs * acc.process_index)
        observations, infos = self.observations, self.infos
        frac = self.set_learning_rates(self.optimizer, update)
        began, tokens_before = time.perf_counter(), policy.tokens_forwarded
        T, N = cfg.num_steps, cfg.num_envs
        prompts: list[Prompt] = []
        choices: list[Choice] = []
        logprobs, values, rewards, dones = (torch.zeros(T, N) for _ in range(4))
        memo: dict = {}  # per distinct query, while the weights stay put
        keep_going = True
        with torch.no_grad(), acc.autocast():
            for t in range(T):
                decision = policy.decide(observations, [slot_info(infos, i) for i in range(N)], memo=memo, history=history)
                prompts += decision.prompts
                choices += decision.choices
                logprobs[t], values[t] = decision.logprobs.float().cpu(), decision.values.float().cpu()
                observations, reward, terminated, truncated, infos = envs.step(decision.actions)
                rewards[t] = torch.as_tensor(reward, dtype=torch.float32)
                dones[t] = torch.as_tensor(terminated | truncated, dtype=torch.float32)
                for episode in self.tracker.step(decision, reward, terminated | truncated, infos):
                    ctx.episode += 1
                    ctx.last_episode = episode
                    keep_going &= callback.on_episode_end(ctx)
                ctx.env_steps += N
            next_value = policy.values(history.prompts(observations, [slot_info(infos, i) for i in range(N)]))
        self.observations, self.infos = observations, infos
        advantages, returns = gae(rewards, values, dones, next_value.float().cpu(), cfg.gamma, cfg.gae_lambda)
        rollout_seconds = time.perf_counter() - began

        batch = Batch(prompts, choices, logprobs.flatten(), values.flatten(), advantages.flatten(), returns.flatten())
        metrics = self.update(policy, self.optimizer, batch)
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
        ctx.transcripts = self.tracker.take_transcripts()
        callback.on_log(ctx, metrics)
        return keep_going

    def _eval_player(self) -> LLMPolicy | ValueRecorder:
        return self.policy if self.truth is None else ValueRecorder(self.policy)

    def _eval_extras(self, player: LLMPolicy | ValueRecorder) -> dict[str, float]:
        if self.truth is None:
            return {}
        self.ctx.value_calibration = value_calibration(player, self.truth)
        return self.ctx.value_calibration.metrics()

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

    # ---- checkpoints ----------------------------------------------------------------------------
    def _save(self, directory: Path) -> None:
        """Adapters, value head and optimizer (the main process's); the counters and RNGs are the base's."""
        if self.is_main_process:
            self.policy.save(directory)
            torch.save(self.optimizer.state_dict(), directory / "optimizer.pt")

    def _restore(self, directory: Path) -> None:
        self.policy.load_weights(directory)
        self.optimizer.load_state_dict(
            torch.load(directory / "optimizer.pt", map_location=self.accelerator.device, weights_only=True)
        )

    def _rng_states(self) -> dict:
        return super()._rng_states() | {"ppo": rng.torch_state(self.rng), "policy": rng.torch_state(self.policy.generator)}

    def _set_rng_states(self, states: dict) -> None:
        super()._set_rng_states(states)
        rng.set_torch_state(self.rng, states["ppo"])
        rng.set_torch_state(self.policy.generator, states["policy"])


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
