"""A decoder LM cut at a layer: the frozen layers below run once per prompt, the layers above train.

Every forward pass attends to a fixed prefix (the env's instructions) through its KV cache, so the
prefix is never recomputed. A batch holds right-padded prompts and, optionally, continuations of some
of them (multi-token actions, generated answers): the continuations attend to their prompt through
the prompt's KV cache, so a prompt shared by K candidates runs once, not K times.

The layer loop below is that of Llama-style decoders in transformers (``get_decoder()`` with
``layers``, ``norm`` and ``rotary_emb``): SmolLM2, Llama, Qwen2, Mistral and their kin.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import DynamicCache, PreTrainedModel
from transformers.masking_utils import create_causal_mask

KV = list[tuple[Tensor, Tensor]]
"""Keys and values of every decoder layer, each ``[batch, kv_heads, length, head_dim]``."""


def decoder(model: nn.Module) -> nn.Module:
    """The decoder stack (embeddings, layers, final norm, rotary embedding) of a causal LM, peft-wrapped or not."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    stack = base.get_decoder()
    if not all(hasattr(stack, name) for name in ("layers", "norm", "rotary_emb", "embed_tokens")):
        raise TypeError(
            f"{type(base).__name__} is not a Llama-style decoder (layers, norm, rotary_emb): the LLM policy's "
            "layer split supports Llama, SmolLM2, Qwen2, Mistral and similar models"
        )
    return stack


@torch.no_grad()
def encode_prefix(model: PreTrainedModel, ids: Tensor) -> KV:
    """The KV cache of ``ids`` (``[1, P]``) in every layer."""
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    return [(layer.keys, layer.values) for layer in out.cache.layers]


@dataclass
class Segments:
    """Hidden states entering a range of layers: prompts, and continuations of some of them."""

    prompts: Tensor
    """``[B, T, H]``, right-padded."""
    prompt_mask: Tensor
    """``[B, T]``, 1 on real tokens."""
    continuations: Tensor | None = None
    """``[C, S, H]``, right-padded; each continues the prompt ``rows[c]``."""
    continuation_mask: Tensor | None = None
    """``[C, S]``, 1 on real tokens."""
    rows: Tensor | None = None
    """``[C]``: the prompt each continuation follows."""

    def replace(self, prompts: Tensor, continuations: Tensor | None) -> Segments:
        """The same layout with new hidden states."""
        return Segments(prompts, self.prompt_mask, continuations, self.continuation_mask, self.rows)


def _cache(config, entries: dict[int, tuple[Tensor, Tensor]]) -> DynamicCache:
    data = [entries.get(i, (None, None)) for i in range(config.num_hidden_layers)]
    return DynamicCache(ddp_cache_data=data, config=config)


def _stack(stack: nn.Module, layers: range, hidden: Tensor, cache: DynamicCache, mask: Tensor, positions: Tensor) -> Tensor:
    causal = create_causal_mask(
        config=stack.config, inputs_embeds=hidden, attention_mask=mask, cache=cache, position_ids=positions,
        layer_idx=layers[0],
    )
    rotary = stack.rotary_emb(hidden, position_ids=positions)
    for i in layers:
        hidden = stack.layers[i](
            hidden, attention_mask=causal, position_embeddings=rotary, position_ids=positions, cache=cache, use_cache=True
        )
    return hidden


def run_layers(stack: nn.Module, layers: range, prefix: KV, x: Segments) -> Segments:
    """The hidden states after ``layers`` (no final norm), with the prefix attended through its cache."""
    if len(layers) == 0:
        return x
    (batch, length, _), plen = x.prompts.shape, prefix[0][0].shape[2]
    cache = _cache(stack.config, {i: (prefix[i][0].expand(batch, -1, -1, -1), prefix[i][1].expand(batch, -1, -1, -1))
                                  for i in layers})
    seen = x.prompt_mask.new_ones(batch, plen)
    positions = plen + torch.arange(length, device=x.prompts.device).expand(batch, length)
    prompts = _stack(stack, layers, x.prompts, cache, torch.cat([seen, x.prompt_mask], 1), positions)
    if x.continuations is None:
        return x.replace(prompts, None)
    count, clen = x.continuation_mask.shape
    cache = _cache(stack.config, {i: (cache.layers[i].keys[x.rows], cache.layers[i].values[x.rows]) for i in layers})
    starts = plen + x.prompt_mask.sum(1)[x.rows]
    positions = starts[:, None] + torch.arange(clen, device=starts.device)
    mask = torch.cat([seen[x.rows], x.prompt_mask[x.rows], x.continuation_mask], 1)
    return x.replace(prompts, _stack(stack, layers, x.continuations, cache, mask, positions))


class ValueHead(nn.Module):
    """LayerNorm, linear, tanh, linear: a scalar value from a hidden state."""

    def __init__(self, hidden_size: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, hidden: Tensor) -> Tensor:
        return self.net(hidden).squeeze(-1)


@dataclass
class NetworkOutput:
    """Next-token logits after each prompt and inside each continuation, and the prompts' values."""

    last_logits: Tensor
    """``[B, V]``: the logits after each prompt's last token."""
    values: Tensor
    """``[B]``: the value head on each prompt's last hidden state (detached from the LM)."""
    continuation_logits: Tensor | None
    """``[C, S, V]``: the logits after each continuation token."""


class PolicyNetwork(nn.Module):
    """What trains: the LM's top layers (LoRA adapters), and the value head. Wrap this module for DDP.

    Its input is the output of the frozen layers below ``first_trainable`` (see :func:`run_layers`).
    """

    def __init__(self, lm: nn.Module, first_trainable: int, value_hidden: int) -> None:
        super().__init__()
        self.lm = lm
        base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
        self.stack = [decoder(lm)]  # lists, so that these parts of ``lm`` are not registered twice
        self.head = [base.get_output_embeddings()]
        self.top = range(first_trainable, len(self.stack[0].layers))
        self.value_head = ValueHead(self.stack[0].config.hidden_size, value_hidden)

    def forward(self, prefix: KV, x: Segments) -> NetworkOutput:
        stack = self.stack[0]
        out = run_layers(stack, self.top, prefix, x)
        last = x.prompt_mask.sum(1) - 1
        hidden = stack.norm(out.prompts[torch.arange(len(last)), last])
        head = self.head[0]
        continuation_logits = None if out.continuations is None else head(stack.norm(out.continuations))
        return NetworkOutput(head(hidden), self.value_head(hidden.detach()), continuation_logits)
