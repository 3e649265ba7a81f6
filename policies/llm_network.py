"""A decoder LM cut at a layer: the frozen layers below run once per prompt, the layers above train.

Every forward pass attends to a fixed prefix (the env's instructions) through its KV cache, so the
prefix is never recomputed. A batch holds one row per prompt, its continuations (multi-token actions, a
generated answer) packed after it as a token trie in preorder (see :mod:`textgym.policies.llm_trie`): an
attention mask lets each token see the prefix, the prompt and its own ancestors only, at the positions its
candidate's own forward pass would give it. So a prompt shared by K candidates runs once and is held once
(no K-fold copy of its KV cache), a token prefix shared by candidates runs once, and the candidates'
log-probs equal K separate forwards.

The layer loop below is that of Llama-style decoders in transformers (``get_decoder()`` with
``layers``, ``norm`` and ``rotary_emb``): SmolLM2, Llama, Qwen2, Mistral and their kin.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import DynamicCache, PreTrainedModel

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
class Rows:
    """Hidden states entering a range of layers, one row per query: its prompt, then the trie of its continuations
    in preorder (right-padded). Token ``i`` attends to the prefix and to token ``j`` of its row iff
    ``j <= i < end[j]``: the prompt's tokens are seen by all after them, a trie node by its subtree, padding by
    nobody; so the K candidates of a prompt share the prompt's one KV cache, and their shared prefixes."""

    hidden: Tensor
    """``[B, L, H]``."""
    positions: Tensor
    """``[B, L]``: each token's position after the prefix (a trie node's: the prompt's length plus its depth)."""
    end: Tensor
    """``[B, L]``: one past the last index that attends to each token (``L`` for prompt tokens, the end of its
    subtree for a trie node, its own index for padding)."""
    last: Tensor
    """``[B]``: the index of each row's last prompt token."""
    reads: Tensor
    """``[n]``: flat indices (``row * L + index``) of the trie nodes whose next-token logits are needed (each once)."""

    def replace(self, hidden: Tensor) -> Rows:
        """The same layout with new hidden states."""
        return Rows(hidden, self.positions, self.end, self.last, self.reads)


def _cache(config, entries: dict[int, tuple[Tensor, Tensor]]) -> DynamicCache:
    data = [entries.get(i, (None, None)) for i in range(config.num_hidden_layers)]
    return DynamicCache(ddp_cache_data=data, config=config)


def attention_mask(x: Rows, prefix_length: int, implementation: str, dtype: torch.dtype) -> Tensor:
    """``[B, 1, L, prefix + L]``: who attends to whom in :class:`Rows` (every token sees the whole prefix), in the
    form the attention ``implementation`` takes (boolean for ``sdpa``, additive for ``eager``)."""
    batch, length = x.end.shape
    index = torch.arange(length, device=x.end.device)
    allowed = (index[None, None, :] <= index[None, :, None]) & (index[None, :, None] < x.end[:, None, :])
    allowed = torch.cat([allowed.new_ones(batch, length, prefix_length), allowed], -1)[:, None]
    if implementation == "sdpa":
        return allowed
    if implementation == "eager":
        return torch.zeros(allowed.shape, dtype=dtype, device=x.end.device).masked_fill(~allowed, torch.finfo(dtype).min)
    raise ValueError(f"attention implementation {implementation!r} takes no custom mask: load the model with "
                     "attn_implementation='sdpa' (or 'eager') for the LLM policy's shared-prompt scoring")


def run_layers(stack: nn.Module, layers: range, prefix: KV, x: Rows) -> Rows:
    """The hidden states after ``layers`` (no final norm), with the prefix attended through its cache."""
    if len(layers) == 0:
        return x
    batch, plen = x.hidden.shape[0], prefix[0][0].shape[2]
    cache = _cache(stack.config, {i: (prefix[i][0].expand(batch, -1, -1, -1), prefix[i][1].expand(batch, -1, -1, -1))
                                  for i in layers})
    mask = attention_mask(x, plen, stack.config._attn_implementation, x.hidden.dtype)
    positions = plen + x.positions
    hidden = x.hidden
    rotary = stack.rotary_emb(hidden, position_ids=positions)
    for i in layers:
        hidden = stack.layers[i](
            hidden, attention_mask=mask, position_embeddings=rotary, position_ids=positions, cache=cache, use_cache=True
        )
    return x.replace(hidden)


class ValueHead(nn.Module):
    """LayerNorm, linear, tanh, linear: a scalar value from a hidden state, in float32 whatever the model's dtype."""

    def __init__(self, hidden_size: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, hidden: Tensor) -> Tensor:
        return self.net(hidden.to(self.net[1].weight.dtype)).squeeze(-1)


@dataclass
class NetworkOutput:
    """Next-token logits after each prompt and after the continuation tokens read, and the prompts' values."""

    last_logits: Tensor
    """``[B, V]``: the logits after each prompt's last token."""
    values: Tensor
    """``[B]``: the value head on each prompt's last hidden state (detached from the LM)."""
    read_logits: Tensor
    """``[n, V]``: the logits after each token of ``Rows.reads``."""


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

    def forward(self, prefix: KV, x: Rows) -> NetworkOutput:
        stack, head = self.stack[0], self.head[0]
        out = run_layers(stack, self.top, prefix, x).hidden
        last = stack.norm(out[torch.arange(len(x.last), device=out.device), x.last])
        read = head(stack.norm(out.flatten(0, 1)[x.reads]))  # the LM head only where logits are needed
        return NetworkOutput(head(last), self.value_head(last.detach()), read)
