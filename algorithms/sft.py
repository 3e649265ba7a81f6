"""Supervised fine-tuning of an LLM policy on recorded episodes with TRL's ``SFTTrainer`` (``algorithm=sft``).

The examples are tokenized here, by the policy's own :class:`~textgym.policies.llm_prompts.ChatFormat` and
:class:`~textgym.policies.llm_prompts.History` (its ``policy.history`` window), so each example's prompt is
token for token the prompt the policy acts on; the loss is on the answer only (the action and the end token:
what score mode ranks and generate mode writes). Only the policy's LoRA adapters train, so the result saves
and loads as any LLM policy (``LLMPolicy.save`` / ``load``) and can start PPO (``policy.init_from=<dir>``).
"""

from __future__ import annotations

import logging
import math

import torch
import trl
from datasets import Dataset

from textgym.algorithms.bc import recorded_turns
from textgym.algorithms.sft_config import SFTConfig
from textgym.algorithms.trajectories import imitation_turns
from textgym.algorithms.trl_base import TRLAlgorithm
from textgym.policies.llm_prompts import ChatFormat

log = logging.getLogger(__name__)


def sft_examples(turns: Dataset, chat: ChatFormat, history: int) -> Dataset:
    """Pre-tokenized examples (``input_ids``, ``completion_mask``), one per recorded turn, with the prompts
    rebuilt by a :class:`History` of ``history`` earlier turns per episode."""
    examples = []
    for prompt, action in recorded_turns(turns, history):
        prompt_ids, answer_ids = chat.example(prompt, action)
        examples.append({"input_ids": prompt_ids + answer_ids, "completion_mask": [0] * len(prompt_ids) + [1] * len(answer_ids)})
    return Dataset.from_list(examples)


class SFT(TRLAlgorithm[SFTConfig]):
    """Imitates the episodes of a ``textgym collect`` dataset (``algorithm=sft``)."""

    def _setup(self) -> None:
        cfg, policy = self.config, self.policy
        turns = imitation_turns(cfg.dataset, cfg.keep, self.env_id())
        examples = sft_examples(turns, ChatFormat(policy.tokenizer), policy.config.history)
        log.info("SFT on %d turns of %d episodes", len(examples), len(set(turns["episode"])))
        self.steps = math.ceil(cfg.epochs * math.ceil(len(examples) / cfg.batch_size))
        args = trl.SFTConfig(
            output_dir=self.scratch_dir(), num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, logging_steps=cfg.logging_steps,
            bf16=cfg.bf16, use_cpu=cfg.cpu or not torch.cuda.is_available(), seed=self.seed, completion_only_loss=True,
            max_length=None, gradient_checkpointing=False, save_strategy="no", report_to="none", disable_tqdm=True,
        )
        self.trainer = trl.SFTTrainer(model=policy.lm, args=args, train_dataset=examples,
                                      processing_class=policy.tokenizer, callbacks=self.trainer_callbacks())
