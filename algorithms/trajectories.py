"""Trajectory datasets: a policy's recorded episodes as a Hugging Face ``datasets`` dataset (one row per turn).

Each row holds what the env showed (observation, instructions, valid actions, info), what the policy did
(the action; with an expert, also ``expert_action``, what the expert would have done there), what it earned
(reward and reward terms), and the chat an LLM policy would have seen in that state, built by the LLM
policy's own :class:`~textgym.policies.llm_prompts.History` — so that fine-tuning on the rows trains exactly
the prompts the policy acts on. ``prompt`` / ``completion`` are in TRL's conversational prompt-completion
format, the completion being the action to imitate (the expert's, where there is one). The dataset's
``info.description`` is the JSON of the run's metadata (env id, seed, config); :func:`load_trajectories`
reads both back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetInfo, load_from_disk

from textgym.algorithms.evaluation import Episode
from textgym.algorithms.imitation_config import Keep
from textgym.policies.llm_prompts import History

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """JSON fallback: numpy scalars and arrays as Python values, anything else as its text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _json(value: Any) -> str:
    return json.dumps(value, default=_plain, sort_keys=True)


def episode_rows(episodes: Sequence[Episode], env_id: str, seed: int, history: int = 0) -> list[dict[str, Any]]:
    """One row per turn of each recorded episode (``evaluate(..., record=True)``).

    ``history`` is the LLM policy's window of earlier turns (``policy.history``) used to build the prompts.
    """
    rows = []
    for number, episode in enumerate(episodes):
        if episode.steps is None:
            raise ValueError("the episodes carry no turns: evaluate them with record=True")
        turns = History(history)
        for turn, step in enumerate(episode.steps):
            prompt = turns.prompts([step.observation], [step.info])[0]
            turns.record([step.action])
            rows.append({
                "env_id": env_id, "seed": seed, "episode": number, "task": episode.seed, "turn": turn,
                "observation": step.observation, "instructions": prompt.instructions,
                "valid_actions": list(prompt.actions), "action": step.action,
                "prompt": prompt.messages(),
                "completion": [{"role": "assistant",
                                "content": step.action if step.expert_action is None else step.expert_action}],
                "reward": step.reward, "reward_terms": _json(step.next_info.get("reward_terms", {})),
                "terminated": step.terminated, "truncated": step.truncated, "info": _json(step.next_info),
                "episode_return": episode.reward, "episode_success": episode.success,
                "episode_length": episode.length,
            } | ({} if step.expert_action is None else {"expert_action": step.expert_action}))
    return rows


def save_trajectories(rows: list[dict[str, Any]], metadata: Mapping[str, Any], directory: str | Path) -> Dataset:
    """Write the rows as an Arrow dataset under ``directory``, with ``metadata`` as its description."""
    if not rows:
        raise ValueError("no turns to save: collect at least one episode")
    dataset = Dataset.from_list(rows, info=DatasetInfo(description=_json(metadata)))
    dataset.save_to_disk(str(directory))
    return dataset


def load_trajectories(directory: str | Path) -> tuple[Dataset, dict[str, Any]]:
    """A dataset written by :func:`save_trajectories` (``textgym collect``) and its metadata."""
    if not Path(directory, "dataset_info.json").exists():
        raise FileNotFoundError(f"{directory} holds no dataset: write one with textgym collect (output=<dir>)")
    dataset = load_from_disk(str(directory))
    return dataset, json.loads(dataset.info.description or "{}")


def select(dataset: Dataset, keep: Keep) -> Dataset:
    """The turns of the episodes that ``keep`` selects (see :class:`~textgym.algorithms.imitation_config.Keep`)."""
    if keep is Keep.all:
        return dataset
    if keep is Keep.success:
        return dataset.filter(lambda success: success, input_columns="episode_success")
    best: dict[Any, tuple[float, int]] = {}  # per task (episodes without one are tasks of their own)
    for task, episode, value in zip(dataset["task"], dataset["episode"], dataset["episode_return"]):
        key = ("episode", episode) if task is None else ("task", task)
        if key not in best or value > best[key][0]:
            best[key] = (value, episode)
    chosen = {episode for _, episode in best.values()}
    return dataset.filter(lambda episode: episode in chosen, input_columns="episode")


def imitation_turns(directories: Sequence[str | Path], keep: Keep, env_id: str | None) -> list[Dataset]:
    """The turns that imitation learns from, per dataset: the episodes that ``keep`` selects, or every turn of a
    dataset labelled by an expert (``expert_action``: each turn is a demonstration, whatever the episode's fate).

    Warns when a dataset was recorded on another env than ``env_id``; a ValueError when none is left.
    """
    selected = []
    for directory in directories:
        dataset, metadata = load_trajectories(directory)
        if metadata.get("env_id") not in (None, env_id):
            log.warning("the dataset %s was recorded on %s, the run's env is %s", directory, metadata["env_id"], env_id)
        selected.append(dataset if "expert_action" in dataset.column_names else select(dataset, keep))
    if sum(map(len, selected)) == 0:
        raise ValueError(f"keep={keep.value} leaves no episode of {', '.join(map(str, directories))}: collect more "
                         "episodes, or keep=all / keep=best")
    return selected
