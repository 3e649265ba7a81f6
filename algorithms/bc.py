"""Behaviour cloning through the LLM policy's own scoring (``algorithm=bc``), read top to bottom.

Each recorded turn of a ``textgym collect`` dataset becomes the prompt the policy would have seen (its
:class:`~textgym.policies.llm_prompts.History` window rebuilt per episode) and the recorded action as the
policy's choice: its index among the valid actions in score mode, its tokens and the end token in generate
mode. The loss is ``-log pi(a* | s)`` from :meth:`LLMPolicy.evaluate`, the forward pass that acts and that PPO
trains: the instructions prefix cached with the adapters off, the frozen lower layers cached, the adapters
on the top layers. So what is cloned is what acts, and a cloned policy can start PPO as it is.

Batches run as micro-batches of at most ``token_budget`` tokens (as PPO's), their gradients summed to the
batch's before one clipped AdamW step, at the ``lr_scheduler``'s rate. After ``epochs`` over every turn,
``hard_epochs`` go over the turns still costing more than ``hard_loss``, scored once when the first of them starts.
"""

from __future__ import annotations

import json
import logging
import math
from itertools import chain
from pathlib import Path

import torch
from transformers import get_scheduler

from textgym.algorithms.base import Algorithm
from textgym.algorithms.bc_config import BCConfig
from textgym.algorithms.imitation import choice_of, episode_count, recorded_turns, token_bounded_parts, training_device
from textgym.algorithms.trajectories import imitation_turns
from textgym.policies.llm import Choice, LLMPolicy
from textgym.policies.llm_config import ActionMode
from textgym.policies.llm_prompts import Prompt

log = logging.getLogger(__name__)


def cloning_losses(policy: LLMPolicy, prompts: list[Prompt], choices: list[Choice]) -> torch.Tensor:
    """``-log pi(choice | prompt)`` per example, as the policy acts (with gradients unless under ``no_grad``)."""
    return -policy.evaluate(prompts, choices).logprobs


class BC(Algorithm[BCConfig, LLMPolicy]):
    """Clones the actions of a ``textgym collect`` dataset into an LLM policy's adapters (``algorithm=bc``).

    Progress counts optimizer steps, so a stop signal waits for one batch, not an epoch; each epoch's order is
    a permutation seeded by the run's seed and the epoch, and the hard turns are checkpointed once scored, so a
    resumed run continues mid-epoch exactly.
    """

    policy_type = LLMPolicy
    policy_option = "an LLM policy (policy=llm)"
    unit = "steps"
    checkpoint_prefix = "step"

    def progress(self) -> int:
        return self.ctx.update

    def budget(self) -> int:
        hard = len(self.prompts) if self.hard is None else len(self.hard)  # at most every turn until scored
        return self.first_steps + self.config.hard_epochs * math.ceil(hard / self.config.batch_size)

    def _setup(self) -> None:
        cfg, policy = self.config, self.policy
        turns = imitation_turns(cfg.datasets, cfg.keep, self.env_id())
        examples = recorded_turns(chain(*turns), policy.config.history,
                                  listed_only=policy.config.action_mode is ActionMode.score)
        self.prompts = [prompt for prompt, _ in examples]
        self.choices = [choice_of(policy, prompt, action) for prompt, action in examples]
        self.steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
        self.first_steps = cfg.epochs * self.steps_per_epoch
        self.hard: list[int] | None = None  # the hard turns' indices, once scored
        log.info("BC on %d turns of %d episodes: %d steps of %d turns per epoch", len(examples),
                 episode_count(turns), self.steps_per_epoch, cfg.batch_size)
        policy.to(training_device(cfg.cpu))
        adapters, _ = policy.trainable_parameters()
        self.optimizer = torch.optim.AdamW(adapters, lr=cfg.learning_rate, eps=1e-5, weight_decay=0.0)
        self.scheduler = get_scheduler(cfg.lr_scheduler, self.optimizer, num_warmup_steps=0,
                                       num_training_steps=self.first_steps)
        self.ctx.total_env_steps = 0

    def _epoch_of(self, step: int) -> tuple[int, int, list[int] | range]:
        """Optimizer step ``step``'s epoch, its position in the epoch and the turns the epoch goes over."""
        if step < self.first_steps:
            return *divmod(step, self.steps_per_epoch), range(len(self.prompts))
        assert self.hard is not None, "the hard turns are scored before the first hard epoch"
        epoch, position = divmod(step - self.first_steps, math.ceil(len(self.hard) / self.config.batch_size))
        return self.config.epochs + epoch, position, self.hard

    def _batch(self, step: int) -> list[int]:
        """The example indices of optimizer step ``step``: its slice of its epoch's seeded permutation."""
        epoch, position, turns = self._epoch_of(step)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(turns), generator=generator).tolist()
        return [turns[i] for i in order[position * self.config.batch_size : (position + 1) * self.config.batch_size]]

    def _hard_turns(self) -> list[int]:
        """The turns whose cloning loss exceeds ``hard_loss`` now (scored without gradients)."""
        cfg, policy = self.config, self.policy
        losses = torch.empty(len(self.prompts))
        with torch.no_grad():
            for part in token_bounded_parts(policy, self.prompts, self.choices, cfg.token_budget):
                losses[part] = cloning_losses(policy, [self.prompts[i] for i in part],
                                              [self.choices[i] for i in part]).float().cpu()
        hard = torch.nonzero(losses > cfg.hard_loss).flatten().tolist()
        log.info("BC's hard turns: %d of %d with -log pi(a* | s) > %g (mean loss %.4f over all, %.4f over these): "
                 "%d steps per hard epoch", len(hard), len(losses), cfg.hard_loss, float(losses.mean()),
                 float(losses[hard].mean()) if hard else 0.0, math.ceil(len(hard) / cfg.batch_size))
        return hard

    def _iterate(self) -> bool:
        cfg, policy, ctx = self.config, self.policy, self.ctx
        if ctx.update == self.first_steps and self.hard is None:
            self.hard = self._hard_turns()
            if not self.hard:
                return True  # nothing left to learn: the budget is spent
        adapters, _ = policy.trainable_parameters()
        index = self._batch(ctx.update)
        total = 0.0
        for part in token_bounded_parts(policy, [self.prompts[i] for i in index], [self.choices[i] for i in index],
                                        cfg.token_budget):
            rows = [index[i] for i in part]
            loss = cloning_losses(policy, [self.prompts[i] for i in rows], [self.choices[i] for i in rows]).sum()
            (loss / len(index)).backward()
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(adapters, cfg.max_grad_norm)
        rate = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        ctx.update += 1
        ctx.episode = ctx.update
        epoch, position, turns = self._epoch_of(ctx.update - 1)
        epochs = epoch + (position + 1) / math.ceil(len(turns) / cfg.batch_size)
        self.callback.on_log(ctx, {"train/loss": total / len(index), "train/epoch": epochs,
                                    "train/learning_rate": rate})
        return True

    def _save(self, directory: Path) -> None:
        self.policy.save(directory)
        torch.save(self.optimizer.state_dict(), directory / "optimizer.pt")
        torch.save(self.scheduler.state_dict(), directory / "scheduler.pt")
        if self.hard is not None:
            (directory / "hard_turns.json").write_text(json.dumps(self.hard))

    def _restore(self, directory: Path) -> None:
        self.policy.load_weights(directory)
        self.optimizer.load_state_dict(torch.load(directory / "optimizer.pt", map_location=self.policy.device,
                                                  weights_only=True))
        if (directory / "scheduler.pt").exists():  # not in checkpoints older than the schedules (constant then)
            self.scheduler.load_state_dict(torch.load(directory / "scheduler.pt", weights_only=True))
        if (directory / "hard_turns.json").exists():
            self.hard = json.loads((directory / "hard_turns.json").read_text())
