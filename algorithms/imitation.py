"""What the imitation algorithms share (``algorithm=bc``, ``algorithm=sft``): recorded turns as the prompts the
LLM policy builds and the choices that play the recorded actions, and micro-batches of them bounded in tokens."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from datasets import Dataset

from textgym.algorithms.ppo import micro_batches
from textgym.policies.llm import Choice, LLMPolicy
from textgym.policies.llm_config import ActionMode
from textgym.policies.llm_prompts import History, Prompt

log = logging.getLogger(__name__)


def recorded_turns(
    turns: Iterable[Mapping[str, Any]], history: int, listed_only: bool = False
) -> list[tuple[Prompt, str]]:
    """Per recorded turn (the rows of one or more datasets), the prompt the LLM policy builds in that state
    (``history`` earlier turns of its episode, as they were played) and the action to imitate: the expert's
    where the turn was labelled by one (``expert_action``), else the recorded action.

    ``listed_only`` (score mode, which chooses among the listed actions) skips, with a warning, the turns whose
    expert action is not listed: an expert may know a move the env does not list (a Wordle word) or, off its
    own path, answer one the env rejects.
    """
    examples, window, skipped = [], History(history), 0
    for row in turns:
        if row["turn"] == 0:  # the rows of an episode are consecutive, in turn order
            window = History(history)
        info = {"valid_actions": row["valid_actions"]} | ({"instructions": row["instructions"]} if row["turn"] == 0 else {})
        prompt = window.prompts([row["observation"]], [info])[0]
        window.record([row["action"]])
        expert = row.get("expert_action")
        if listed_only and expert is not None and expert not in prompt.actions:
            skipped += 1
            continue
        examples.append((prompt, row["action"] if expert is None else expert))
    if skipped:
        log.warning("skipped %d labelled turns whose expert action is not among the valid actions listed", skipped)
    return examples


def episode_count(turns: Sequence[Dataset]) -> int:
    """The episodes of the datasets' turns (each starts at turn 0)."""
    return sum(sum(turn == 0 for turn in part["turn"]) for part in turns)


def choice_of(policy: LLMPolicy, prompt: Prompt, action: str, mode: ActionMode | None = None) -> Choice:
    """The choice that plays ``action`` in ``prompt`` in ``mode`` (by default the policy's): its index among the
    valid actions (score mode) or its answer tokens (generate mode)."""
    if (policy.config.action_mode if mode is None else mode) is ActionMode.generate:
        return policy.answer_tokens(action)
    if action not in prompt.actions:
        raise ValueError(f"the recorded action {action!r} is not among the valid actions listed in its state "
                         f"{list(prompt.actions)}, and score mode chooses among those: clone a demonstrator that plays "
                         "unlisted actions (Wordle's oracle guesses any allowed word) with policy.action_mode=generate, "
                         "or collect the dataset again if it was recorded on another env version")
    return prompt.actions.index(action)


def token_bounded_parts(
    policy: LLMPolicy, prompts: Sequence[Prompt], choices: Sequence[Choice], budget: int, mode: ActionMode | None = None
) -> list[list[int]]:
    """Positions of the examples in micro-batches of at most ``budget`` tokens in the policy's trainable layers
    (examples sharing a forward unit stay together; a unit over budget runs alone)."""
    return micro_batches([policy.forward_unit(p, c, mode) for p, c in zip(prompts, choices)], budget)


def training_device(cpu: bool) -> torch.device:
    """Where imitation trains: the GPU when there is one, unless ``cpu``."""
    return torch.device("cpu") if cpu or not torch.cuda.is_available() else torch.device("cuda")
