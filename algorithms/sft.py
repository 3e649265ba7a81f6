"""Supervised fine-tuning of an LLM policy on recorded episodes with TRL's ``SFTTrainer`` (``algorithm=sft``).

TRL runs the loop (its arguments, optimizer, scheduler, logging, callbacks); the loss is the policy's own.
Each recorded turn becomes the prompt the policy builds in that state (its ``policy.history`` window rebuilt
per episode) and the answer generate mode writes for the recorded action (its tokens and the end token).
The loss goes through :meth:`LLMPolicy.evaluate` in generate mode, the forward pass that samples: the
instructions prefix read from the policy's KV cache (encoded with the adapters off, without gradient, once
per distinct instructions), the dynamic prompt and the answer through the frozen lower layers (their output
cached) and the adapted top layers, the logits divided by ``policy.temperature``. A batch's loss is

    loss = -(1 / T) * sum over its turns of log pi(answer | prompt),   T = the batch's answer tokens,

the mean negative log-likelihood per answer token (TRL's normalisation), where ``pi`` is the distribution
that generate mode samples from at the policy's temperature (greedy decoding takes its argmax). A batch
runs as micro-batches of at most ``algorithm.token_budget`` tokens, one backward pass each (as in BC and
PPO). In score mode the same loss trains the answer's likelihood that the scores are read from;
``algorithm=bc`` trains score mode's own ``-log pi`` over the valid actions.

Only the policy's LoRA adapters train, so the result saves and loads as any LLM policy (``LLMPolicy.save`` /
``load``) and can start PPO (``policy.init_from=<dir>``). One process only: the loss does not run through
the module that ``accelerate launch`` would wrap for DDP.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

import trl
from datasets import Dataset
from torch import Tensor, nn

from textgym.algorithms.imitation import episode_count, recorded_turns, token_bounded_parts, training_device
from textgym.algorithms.sft_config import SFTConfig
from textgym.algorithms.trajectories import imitation_turns
from textgym.algorithms.trl_base import TRLAlgorithm
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import ActionMode
from textgym.policies.llm_prompts import Prompt

log = logging.getLogger(__name__)


def sft_examples(turns: Iterable[Mapping[str, Any]], policy: LLMPolicy) -> Dataset:
    """One row per recorded turn: the fields of the :class:`Prompt` the policy builds in that state
    (``instructions``, ``text``, ``actions``) and the ``answer`` tokens that write the action to imitate
    (see :func:`~textgym.algorithms.imitation.recorded_turns`)."""
    return Dataset.from_list([
        {"instructions": p.instructions, "text": p.text, "actions": list(p.actions), "answer": list(policy.answer_tokens(a))}
        for p, a in recorded_turns(turns, policy.config.history)
    ])


def collate(rows: list[dict[str, Any]]) -> dict[str, list]:
    """A batch of :func:`sft_examples` rows as the policy's prompts and answers."""
    return {"prompts": [Prompt(r["instructions"], r["text"], tuple(r["actions"])) for r in rows],
            "answers": [tuple(r["answer"]) for r in rows]}


class PolicySFTTrainer(trl.SFTTrainer):
    """TRL's ``SFTTrainer`` whose loss is the LLM policy's generate-mode log-likelihood (see the module docstring).

    Its datasets are :func:`sft_examples`; it logs TRL's ``loss`` and ``entropy`` (over the turns since the last
    log, the mean of each answer's mean token entropy at the policy's temperature).
    """

    def __init__(self, policy: LLMPolicy, token_budget: int, **kwargs: Any) -> None:
        super().__init__(model=policy.lm, processing_class=policy.tokenizer, data_collator=collate, **kwargs)
        self.policy, self.token_budget = policy, token_budget

    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Tensor:
        """The batch's gradients, summed over micro-batches of at most ``token_budget`` tokens; its loss."""
        prompts, answers = inputs["prompts"], inputs["answers"]
        tokens = sum(len(answer) for answer in answers)
        loss = 0.0
        for part in token_bounded_parts(self.policy, prompts, answers, self.token_budget, ActionMode.generate):
            part_inputs = {"prompts": [prompts[i] for i in part], "answers": [answers[i] for i in part], "tokens": tokens}
            loss = loss + super().training_step(model, part_inputs, num_items_in_batch)  # one backward pass
        return loss

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Tensor:
        """``-sum log pi(answer | prompt)`` over the turns of ``inputs``, divided by ``inputs["tokens"]`` (the answer
        tokens of the whole batch that ``inputs`` is part of; by default its own)."""
        if return_outputs:
            raise ValueError("the policy's SFT loss has no logits to return: leave compute_metrics and "
                             "prediction_loss_only=False unset")
        with self.accelerator.autocast():
            evaluation = self.policy.evaluate(inputs["prompts"], inputs["answers"], mode=ActionMode.generate)
        tokens = inputs.get("tokens", sum(len(answer) for answer in inputs["answers"]))
        self._metrics["train" if self.model.training else "eval"]["entropy"].extend(evaluation.entropies.detach().tolist())
        return -evaluation.logprobs.sum() / tokens


def trainer_arguments(cfg: SFTConfig, output_dir: str, seed: int) -> trl.SFTConfig:
    """TRL's arguments of an ``algorithm=sft`` run (nothing is saved in ``output_dir``)."""
    return trl.SFTConfig(
        output_dir=output_dir, num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, logging_steps=cfg.logging_steps,
        bf16=cfg.bf16, use_cpu=training_device(cfg.cpu).type == "cpu", seed=seed, max_length=None,
        gradient_checkpointing=False, remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True},
        save_strategy="no", report_to="none", disable_tqdm=True,
    )


class SFT(TRLAlgorithm[SFTConfig]):
    """Imitates the episodes of a ``textgym collect`` dataset (``algorithm=sft``)."""

    def _setup(self) -> None:
        cfg, policy = self.config, self.policy
        turns = imitation_turns(cfg.datasets, cfg.keep, self.env_id())
        examples = sft_examples(chain(*turns), policy)
        log.info("SFT on %d turns of %d episodes", len(examples), episode_count(turns))
        self.steps = math.ceil(cfg.epochs * math.ceil(len(examples) / cfg.batch_size))
        args = trainer_arguments(cfg, self.scratch_dir(), self.seed)
        if args.world_size > 1:
            raise ValueError(f"algorithm=sft runs in one process, not {args.world_size}: start it without accelerate "
                             "launch (algorithm=ppo trains on several)")
        policy.to(args.device)
        self.trainer = PolicySFTTrainer(policy, cfg.token_budget, args=args, train_dataset=examples,
                                        callbacks=self.trainer_callbacks())
