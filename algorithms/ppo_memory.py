"""Before PPO trains an LLM policy: the run's peak memory, estimated from the model's shapes and the env's prompts.

An update runs micro-batches of at most ``token_budget`` tokens through the trainable layers, so its peak is
the process as it stands (interpreter, libraries, weights), plus the policy's caches at their byte bounds,
plus the larger of a rollout forward's working memory and one micro-batch's saved activations. The prompt
sizes come from probing the env: a few resets and random valid steps give the instructions prefix, the
longest prompt and its candidates. :func:`plan_memory` picks the token budget (when it is automatic) and
fails, naming the setting to change, when the run cannot fit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from textgym.algorithms.ppo_config import PPOConfig
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import ActionMode
from textgym.policies.llm_memory import MB
from textgym.policies.llm_prompts import History

log = logging.getLogger(__name__)

GB = 1024**3
"""Bytes in a GiB (the unit of the messages)."""
MAX_AUTO_BUDGET = 4096
"""The automatic token budget's ceiling: larger micro-batches buy no speed on a CPU."""
AUTO_SHARE = 0.5
"""The share of the available memory an automatic budget may plan to use (others share the machine)."""


@dataclass(frozen=True)
class PromptSizes:
    """What the env's probed states need of a forward pass (tokens)."""

    prefix: int
    """The longest instructions prefix (kept in a KV cache)."""
    row: int
    """The longest forward unit: a dynamic prompt and the trie of its candidates (or a generated answer) after it."""
    reads: int
    """The most positions of one unit whose next-token logits are needed (LM-head outputs): its prompt's last
    token and its trie's nodes that have children."""


def probe_prompts(env_fn: Callable[[], gym.Env], policy: LLMPolicy, episodes: int = 2, steps: int = 4) -> PromptSizes:
    """Sizes of the prompts in a few short random episodes of the env (valid actions, seeded)."""
    env, rng = env_fn(), np.random.default_rng(0)
    prefix = row = reads = 0
    try:
        for episode in range(episodes):
            observation, info = env.reset(seed=episode)
            history = History(policy.config.history)
            for _ in range(steps):
                [prompt] = history.prompts([observation], [info])
                action = str(rng.choice(prompt.actions))
                choice = (0,) * policy.config.max_new_tokens if policy.config.action_mode is ActionMode.generate else 0
                query, tokens = policy.forward_unit(prompt, choice)
                prefix = max(prefix, policy.prefix_length(prompt.instructions))
                row = max(row, tokens)
                reads = max(reads, 1 + len(query.trie.reads))
                history.record([action])
                observation, _, terminated, truncated, info = env.step(action)
                if terminated or truncated:
                    break
    finally:
        env.close()
    return PromptSizes(prefix, row, reads)


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimated peak of a PPO run, in bytes, by part."""

    process: int
    """The process now: interpreter, libraries and (on the CPU) the model's weights."""
    caches: int
    """The policy's caches at their byte bounds (frozen-layer outputs, prefixes, tokenizations)."""
    optimizer: int
    """Gradients and AdamW's two moments of the trainable parameters."""
    rollout: int
    """One forward pass of a rollout (``policy.batch_tokens``), without gradients."""
    update: int
    """One micro-batch of an update: the saved activations of the trainable layers and the LM head's outputs."""
    available: int
    """What the machine (or the GPU) has for this process: free memory plus what the process holds."""

    @property
    def peak(self) -> int:
        return self.process + self.caches + self.optimizer + max(self.rollout, self.update)

    def describe(self) -> str:
        parts = ", ".join(f"{name} {getattr(self, name) / GB:.2f}"
                          for name in ("process", "caches", "optimizer", "rollout", "update"))
        return f"estimated peak {self.peak / GB:.2f} GiB ({parts}) of {self.available / GB:.2f} GiB available"


def estimate_memory(
    policy: LLMPolicy, sizes: PromptSizes, token_budget: int, device: torch.device, config: PPOConfig | None = None
) -> MemoryEstimate:
    """The peak of a PPO run whose update micro-batches hold ``token_budget`` tokens (see the module docstring);
    given the PPO ``config``, no micro-batch holds more than an update's turns, nor a rollout pass more than its
    envs' states."""
    shapes = policy.lm.config
    hidden, inner, vocab = shapes.hidden_size, shapes.intermediate_size, shapes.vocab_size
    heads, kv_heads = shapes.num_attention_heads, shapes.num_key_value_heads
    head_dim = getattr(shapes, "head_dim", None) or hidden // heads
    width = 4 if policy.config.dtype == "float32" else 2
    top = len(policy.network.top)
    # tokens of a micro-batch: at least one whole unit; rows of it: how many units of the longest kind fit
    tokens = max(token_budget, sizes.row)
    if config is not None:
        tokens = min(tokens, config.batch_size * sizes.row)
    rows = max(1, tokens // max(1, sizes.row))
    reads = rows * sizes.reads
    # per token and trainable layer, what autograd keeps: norms, q/k/v/o and the residual stream (about ten
    # hidden-wide tensors), the MLP's gate, up, activation and product (about five inner-wide), and the keys
    # and values repeated to every head; per row and layer, the prefix's keys and values likewise
    per_token = (10 * hidden + 5 * inner + 4 * heads * head_dim) * width
    per_prefix_row = sizes.prefix * (2 * kv_heads + 2 * heads) * head_dim * width
    head = 3 * vocab * 4  # logits, their float log-softmax and its gradient, per read position
    update = top * (tokens * per_token + rows * per_prefix_row) + reads * head
    batch_tokens = max(policy.config.batch_tokens, sizes.row)
    if config is not None:
        batch_tokens = min(batch_tokens, config.num_envs * sizes.row)
    batch_rows = max(1, min(policy.config.batch_size, batch_tokens // max(1, sizes.row)))
    rollout = (3 * batch_tokens * (hidden + inner) * width + batch_rows * per_prefix_row
               + 2 * batch_rows * sizes.reads * vocab * 4)
    adapters, value_head = policy.trainable_parameters()
    optimizer = 4 * sum(p.numel() * p.element_size() for p in adapters + value_head)  # grads, 2 moments, master
    caches = int((policy.config.lower_cache_mb + policy.config.prefix_cache_mb + policy.config.token_cache_mb
                  + policy.config.result_cache_mb) * MB)
    process, available = _process_and_available(policy, device)
    return MemoryEstimate(process, caches, optimizer, rollout, update, available)


def _process_and_available(policy: LLMPolicy, device: torch.device) -> tuple[int, int]:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        held = torch.cuda.memory_allocated(device)
        return held, free + held
    rss = _rss()
    return rss, _available() + rss


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _available() -> int:
    """MemAvailable, or what the cgroup (a container's limit) leaves, whichever is smaller."""
    meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()}
    available = meminfo.get("MemAvailable", meminfo.get("MemFree", 0))
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            available = min(available, int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return available


@dataclass(frozen=True)
class MemoryPlan:
    """The run's token budget, with the estimate that chose it and the probed prompt sizes."""

    token_budget: int
    estimate: MemoryEstimate
    sizes: PromptSizes


_SETTINGS = {"caches": "policy.lower_cache_mb", "update": "algorithm.token_budget", "rollout": "policy.batch_tokens",
             "optimizer": "policy.lora_r", "process": "policy.model (a smaller one)"}
"""The setting that shrinks each part of the estimate."""


def plan_memory(policy: LLMPolicy, config: PPOConfig, env_fn: Callable[[], gym.Env], device: torch.device) -> MemoryPlan:
    """The token budget of the run's update micro-batches, checked to fit the memory available.

    An automatic budget (``config.token_budget`` None) is the largest up to :data:`MAX_AUTO_BUDGET` whose peak
    stays within half the available memory, and at least one prompt's tokens. Raises ``MemoryError`` (one line,
    naming the setting that shrinks the largest part) when the run would not fit.
    """
    sizes = probe_prompts(env_fn, policy)
    budget = config.token_budget or MAX_AUTO_BUDGET
    estimate = estimate_memory(policy, sizes, budget, device, config)
    while config.token_budget is None and budget > sizes.row and estimate.peak > AUTO_SHARE * estimate.available:
        budget = max(sizes.row, budget // 2)
        estimate = estimate_memory(policy, sizes, budget, device, config)
    if estimate.peak > estimate.available:
        largest = max(("caches", "update", "rollout", "optimizer", "process"), key=lambda part: getattr(estimate, part))
        raise MemoryError(f"the run will not fit: {estimate.describe()}; the largest part is {largest}: lower "
                          f"{_SETTINGS[largest]} (the env's longest prompt with its candidates is {sizes.row} tokens, "
                          f"its instructions prefix {sizes.prefix})")
    log.info("memory: token budget %d, %s", budget, estimate.describe())
    return MemoryPlan(budget, estimate, sizes)
