"""An LLM policy with a value head: chooses among the valid actions by their likelihood, or writes its answer.

The prompt is the chat template over the env's instructions (system turn) and the observation, after a
bounded window of earlier turns (user turn). How one forward pass serves a state:

* the instructions prefix is encoded once into a KV cache by the base model (adapters off) and reused;
* the frozen layers below the adapted ones run once per distinct prompt, and their output is cached;
* equal prompts in a batch (or, with a ``memo``, in a whole rollout) share one pass;
* in score mode, single-token actions read the K next-token logits after the prompt; multi-token
  actions are scored as continuations that attend to the prompt's KV cache (each ends with the end
  token, so that "1" is not a free prefix of "16");
* the value head reads the last prompt token's final hidden state, detached from the LM.

LoRA adapters (peft) are the trained weights; with them disabled the same model is the reference
policy of PPO's KL term, so there is no second copy.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from textgym.models import load_causal_lm
from textgym.policies.base import Policy
from textgym.policies.llm_config import ActionMode, LLMPolicyConfig, Normalisation
from textgym.policies.llm_memory import MB, ByteLRU
from textgym.policies.llm_network import (
    KV,
    NetworkOutput,
    PolicyNetwork,
    Rows,
    decoder,
    encode_prefix,
    run_layers,
)
from textgym.policies.llm_prompts import ChatFormat, History, Prompt

Choice = int | tuple[int, ...]
"""Score mode: the index of the chosen action; generate mode: the generated token ids."""


@dataclass(frozen=True)
class Query:
    """One forward unit: a prompt and the continuations scored after it (none: single-token actions)."""

    prompt: Prompt
    continuations: tuple[tuple[int, ...], ...]


@dataclass
class QueryResult:
    """The policy's output for a query."""

    logprobs: Tensor
    """Score mode: the log-probs of the prompt's actions; generate mode: ``[1]``, the continuation's log-prob."""
    entropy: Tensor
    """Score mode: of the distribution over actions; generate mode: mean over the generated tokens."""
    value: Tensor


@dataclass
class Decision:
    """What the policy chose in each slot, with what PPO trains on."""

    actions: list[str]
    prompts: list[Prompt]
    choices: list[Choice]
    logprobs: Tensor
    values: Tensor


@dataclass
class Evaluation:
    """The policy's log-prob of given choices, its entropy and value, and optionally the KL to the reference."""

    logprobs: Tensor
    entropies: Tensor
    values: Tensor
    kl: Tensor | None = None


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class LLMPolicy(Policy):
    """A causal LM with LoRA adapters and a value head, acting in vector envs (see the module docstring).

    ``model`` and ``tokenizer`` may be given directly (tests build tiny ones); otherwise ``config.model``
    is loaded by name or path.
    """

    def __init__(
        self,
        config: LLMPolicyConfig,
        model: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        self.config = config
        if model is None or tokenizer is None:
            model, tokenizer = load_causal_lm(config.model, _DTYPES[config.dtype])
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos token; the LLM policy ends every scored action with it")
        self.tokenizer = tokenizer
        self.chat = ChatFormat(tokenizer)
        self.history = History(config.history)
        layers = len(decoder(model).layers)
        self.first_trainable = 0 if config.trainable_layers is None else max(0, layers - config.trainable_layers)
        lora = LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_target_modules), layers_to_transform=list(range(self.first_trainable, layers)),
        )
        self.lm = get_peft_model(model, lora)
        self.network = PolicyNetwork(self.lm, self.first_trainable, config.value_hidden).to(model.device)
        self.forward_module: nn.Module = self.network
        """What forward passes go through: the network, or its DDP wrapper while PPO trains."""
        self.stack = decoder(self.lm)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.tokens_forwarded = 0
        """Tokens run through the trainable layers so far (for throughput metrics)."""
        self._prefixes: ByteLRU[str, KV] = ByteLRU(int(config.prefix_cache_mb * MB))
        self._lower: ByteLRU[Query, Tensor] = ByteLRU(int(config.lower_cache_mb * MB))
        self._tokenized: ByteLRU[str | tuple[str, ...], list | tuple] = ByteLRU(int(config.token_cache_mb * MB))
        """Token ids of texts (by the text) and scored continuations of action sets (by the actions)."""
        if config.init_from is not None:
            self.load_weights(config.init_from)

    # ---- the Policy interface ---------------------------------------------------------------------
    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        with torch.no_grad():
            return self.decide(observations, infos, greedy=self.config.greedy).actions

    def save(self, directory: str | Path) -> None:
        """Write the adapters (peft's safetensors), the value head and the config under ``directory``."""
        directory = Path(directory)
        self.lm.save_pretrained(directory / "adapter")
        save_file(self.network.value_head.state_dict(), directory / "value_head.safetensors")
        config = {k: v.value if hasattr(v, "value") else v for k, v in dataclasses.asdict(self.config).items()}
        (directory / "llm_policy.json").write_text(json.dumps(config, indent=2))

    @classmethod
    def load(
        cls, directory: str | Path, model: PreTrainedModel | None = None, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> LLMPolicy:
        """A policy written by :meth:`save` (its base model loaded by name, unless given)."""
        directory = Path(directory)
        saved = json.loads((directory / "llm_policy.json").read_text())
        policy = cls(LLMPolicyConfig(**saved | {"init_from": None}), model, tokenizer)  # its own weights follow
        policy.load_weights(directory)
        return policy

    def load_weights(self, directory: str | Path) -> None:
        """Read the adapters and the value head written by :meth:`save` into this policy."""
        directory = Path(directory)
        if not (directory / "llm_policy.json").exists():
            raise FileNotFoundError(f"{directory} holds no LLM policy (llm_policy.json): give the output dir of a "
                                    "textgym train run with policy=llm, or a PPO checkpoint dir")
        saved = json.loads((directory / "llm_policy.json").read_text())
        shape = ("model", "lora_r", "lora_target_modules", "trainable_layers", "value_hidden")
        differ = [f"{k}={saved.get(k)!r} there, {getattr(self.config, k)!r} here" for k in shape
                  if saved.get(k) != getattr(self.config, k)]
        if differ:
            raise ValueError(f"the policy in {directory} was built differently ({'; '.join(differ)}): "
                             "set the same policy.* values to load it")
        adapters = load_file(directory / "adapter" / "adapter_model.safetensors", device=str(self.device))
        set_peft_model_state_dict(self.lm, adapters)
        self.network.value_head.load_state_dict(load_file(directory / "value_head.safetensors", device=str(self.device)))

    # ---- what PPO uses ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.network.value_head.net[1].weight.device

    def to(self, device: torch.device | str) -> LLMPolicy:
        """Move the model and the value head (dropping the caches that live on the old device)."""
        self.network.to(device)
        self._prefixes.clear()
        self._lower.clear()
        return self

    def trainable_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """The adapters' parameters and the value head's (they usually get different learning rates)."""
        adapters = [p for p in self.lm.parameters() if p.requires_grad]
        return adapters, list(self.network.value_head.parameters())

    def decide(
        self,
        observations: Sequence[str],
        infos: Sequence[Mapping[str, Any]],
        greedy: bool = False,
        memo: dict[Query, QueryResult] | None = None,
        history: History | None = None,
    ) -> Decision:
        """Choose an action per slot (call under ``torch.no_grad()``).

        ``memo`` shares results across calls while the weights do not change (a rollout); ``history`` is
        the turns of the slots' episodes (by default the one :meth:`act` uses).
        """
        history = self.history if history is None else history
        prompts = history.prompts(observations, infos)
        if self.config.action_mode is ActionMode.generate:
            choices = [self._generate(prompt, greedy) for prompt in prompts]
            actions = [self._answer(choice) for choice in choices]
            evaluation = self.evaluate(prompts, choices, memo=memo)
        else:
            results = self._results([self._query(p) for p in prompts], memo)
            distributions = [results[self._query(p)].logprobs for p in prompts]
            choices = [int(lp.argmax()) if greedy else int(torch.multinomial(lp.exp().cpu(), 1, generator=self.generator))
                       for lp in distributions]
            actions = [p.actions[c] for p, c in zip(prompts, choices)]
            evaluation = self.evaluate(prompts, choices, memo=results)
        history.record(actions)
        return Decision(actions, prompts, choices, evaluation.logprobs, evaluation.values)

    def values(self, prompts: Sequence[Prompt]) -> Tensor:
        """The value head's estimate for each prompt."""
        queries = [Query(p, ()) if self.config.action_mode is ActionMode.generate else self._query(p) for p in prompts]
        results = self._results(queries)
        return torch.stack([results[q].value for q in queries])

    def evaluate(
        self,
        prompts: Sequence[Prompt],
        choices: Sequence[Choice],
        memo: dict[Query, QueryResult] | None = None,
        reference_memo: dict[Query, QueryResult] | None = None,
        mode: ActionMode | None = None,
    ) -> Evaluation:
        """Log-probs of ``choices``, entropies and values (with gradients unless under ``no_grad``).

        Given ``reference_memo``, also the KL from this policy to the reference (adapters disabled): exact
        over the actions in score mode, the k3 estimate of the sampled answer in generate mode.
        ``mode`` is the action mode whose log-probs to compute (by default the policy's own): in generate mode a
        choice is an answer's tokens (see :meth:`answer_tokens`), scored at ``temperature`` as :meth:`act` samples
        them; memos hold one mode's results.
        """
        mode = self.config.action_mode if mode is None else mode
        generate = mode is ActionMode.generate
        queries = [Query(p, (c,)) if generate else self._query(p) for p, c in zip(prompts, choices)]
        results = self._results(queries, memo, mode)
        picked = [results[q].logprobs[0 if generate else c] for q, c in zip(queries, choices)]
        evaluation = Evaluation(
            torch.stack(picked), torch.stack([results[q].entropy for q in queries]),
            torch.stack([results[q].value for q in queries]),
        )
        if reference_memo is not None:
            with torch.no_grad(), self.lm.disable_adapter():
                reference = self._results(queries, reference_memo, mode)
            if generate:
                log_ratio = torch.stack([reference[q].logprobs[0] for q in queries]) - evaluation.logprobs
                evaluation.kl = log_ratio.exp() - 1 - log_ratio
            else:
                evaluation.kl = torch.stack([
                    (results[q].logprobs.exp() * (results[q].logprobs - reference[q].logprobs)).sum() for q in queries
                ])
        return evaluation

    # ---- prompts and candidates ---------------------------------------------------------------
    def answer_tokens(self, action: str) -> tuple[int, ...]:
        """The answer that writes ``action`` in generate mode: its tokens and the end token."""
        return (*self._tokens(action), self.tokenizer.eos_token_id)

    def _tokens(self, text: str) -> list[int]:
        """The token ids of ``text`` (cached: do not modify them)."""
        return self._tokenized.fetch(text, lambda: self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _query(self, prompt: Prompt) -> Query:
        """Score mode: the prompt with its actions as continuations (none when they are all single tokens)."""
        return Query(prompt, self._tokenized.fetch(prompt.actions, lambda: self._continuations(prompt.actions)))

    def _continuations(self, actions: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
        tokens = [tuple(self._tokens(action)) for action in actions]
        if all(len(t) == 1 for t in tokens) and len(set(tokens)) == len(tokens):
            return ()
        return tuple(t + (self.tokenizer.eos_token_id,) for t in tokens)

    def forward_unit(self, prompt: Prompt, choice: Choice, mode: ActionMode | None = None) -> tuple[Query, int]:
        """The forward unit that evaluates ``choice`` in ``prompt`` in ``mode`` (by default the policy's; equal units
        share one pass) and its token count in the trainable layers: the dynamic prompt and the continuations packed
        after it."""
        generate = (self.config.action_mode if mode is None else mode) is ActionMode.generate
        query = Query(prompt, (choice,)) if generate else self._query(prompt)
        return query, self._length(query)

    def prefix_length(self, instructions: str) -> int:
        """Tokens of the instructions prefix (encoded once into a KV cache)."""
        return len(self._tokens(self.chat.prefix(instructions)))

    def _length(self, query: Query) -> int:
        return len(self._tokens(self.chat.dynamic(query.prompt.text))) + sum(len(c) for c in query.continuations)

    def _prefix(self, instructions: str) -> KV:
        def encode() -> KV:
            ids = torch.tensor([self._tokens(self.chat.prefix(instructions))], device=self.device)
            with self.lm.disable_adapter():
                return encode_prefix(self.lm, ids)

        return self._prefixes.fetch(instructions, encode)

    def _generate(self, prompt: Prompt, greedy: bool) -> tuple[int, ...]:
        """Sampled answer tokens (ending with the eos token unless cut at ``max_new_tokens``)."""
        prefix = self._prefix(prompt.instructions)
        ids = self._tokens(self.chat.prefix(prompt.instructions)) + self._tokens(self.chat.dynamic(prompt.text))
        input_ids = torch.tensor([ids], device=self.device)
        eos = self.tokenizer.eos_token_id
        out = self.lm.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
            cache=DynamicCache(ddp_cache_data=prefix, config=self.lm.config),
            do_sample=not greedy, temperature=self.config.temperature if not greedy else None, top_k=None, top_p=None,
            max_new_tokens=self.config.max_new_tokens, eos_token_id=eos, pad_token_id=eos,
        )
        answer = out[0, len(ids):].tolist()
        return tuple(answer[: answer.index(eos) + 1] if eos in answer else answer)

    def _answer(self, tokens: tuple[int, ...]) -> str:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return text.splitlines()[0].strip() if text else ""

    # ---- forward passes -----------------------------------------------------------------------
    def _results(
        self, queries: Sequence[Query], memo: dict[Query, QueryResult] | None = None, mode: ActionMode | None = None
    ) -> dict[Query, QueryResult]:
        """The result of each distinct query in ``mode`` (by default the policy's), batched per instructions prefix;
        ``memo`` is read and filled."""
        mode = self.config.action_mode if mode is None else mode
        results: dict[Query, QueryResult] = {} if memo is None else memo
        todo = defaultdict(list)
        for query in dict.fromkeys(queries):
            if query not in results:
                todo[query.prompt.instructions].append(query)
        for instructions, group in todo.items():
            prefix = self._prefix(instructions)
            for chunk in self._chunks(group):
                x, scoring = self._batch(chunk, [self._lower_states(q, prefix) for q in chunk])
                out = self.forward_module(prefix, x)
                self.tokens_forwarded += int((x.segments >= 0).sum())
                results.update(zip(chunk, self._read(chunk, out, scoring, mode)))
        return results if memo is None else {q: results[q] for q in queries}

    def _chunks(self, group: list[Query]) -> list[list[Query]]:
        """Forward batches of at most ``batch_size`` rows and ``batch_tokens`` padded tokens (longest rows first)."""
        chunks: list[list[Query]] = []
        widest = 0
        for query in sorted(group, key=self._length, reverse=True):
            length = self._length(query)
            if chunks and len(chunks[-1]) < self.config.batch_size and widest * (len(chunks[-1]) + 1) <= self.config.batch_tokens:
                chunks[-1].append(query)
            else:
                chunks.append([query])
                widest = length
        return chunks

    def _lower_states(self, query: Query, prefix: KV) -> Tensor:
        """The frozen layers' output on the query's packed row (computed once, then cached)."""
        def compute() -> Tensor:
            with torch.no_grad():
                x, _ = self._batch([query], [self.stack.embed_tokens(torch.tensor(self._row_ids(query), device=self.device))])
                return run_layers(self.stack, range(self.first_trainable), prefix, x).hidden[0]

        return self._lower.fetch(query, compute)

    def _row_ids(self, query: Query) -> list[int]:
        return [*self._tokens(self.chat.dynamic(query.prompt.text)), *(t for c in query.continuations for t in c)]

    def _batch(self, chunk: Sequence[Query], hidden: Sequence[Tensor]) -> tuple[Rows, Scoring]:
        """The queries' packed rows (right-padded), and where their continuations' tokens are scored."""
        width = max(len(h) for h in hidden)
        positions = torch.zeros(len(chunk), width, dtype=torch.long)
        segments = torch.full((len(chunk), width), -1, dtype=torch.long)
        last, reads, scoring = [], [], Scoring([], [], [], [])
        for b, query in enumerate(chunk):
            length = len(self._tokens(self.chat.dynamic(query.prompt.text)))
            positions[b, :length] = torch.arange(length)
            segments[b, :length] = 0
            last.append(length - 1)
            start = length
            for c, tokens in enumerate(query.continuations):
                positions[b, start : start + len(tokens)] = torch.arange(length, length + len(tokens))
                segments[b, start : start + len(tokens)] = c + 1
                scoring.lengths.append(len(tokens))
                for s, token in enumerate(tokens):  # token s is predicted after the prompt (s = 0) or after token s - 1
                    scoring.source.append(b if s == 0 else len(chunk) + len(reads))
                    if s:
                        reads.append(b * width + start + s - 1)
                    scoring.target.append(token)
                    scoring.owner.append(len(scoring.lengths) - 1)
                start += len(tokens)
        device = hidden[0].device
        x = Rows(pad_sequence(list(hidden), batch_first=True), positions.to(device), segments.to(device),
                 torch.tensor(last, device=device), torch.tensor(reads, dtype=torch.long, device=device))
        return x, scoring

    def _read(self, chunk: Sequence[Query], out: NetworkOutput, scoring: Scoring, mode: ActionMode) -> list[QueryResult]:
        """Per query: log-probs over its actions (score ``mode``) or of its answer (generate), entropy and value."""
        temperature = self.config.temperature
        token_logprobs = token_entropy = None
        if scoring.lengths:
            logits = torch.cat([out.last_logits, out.read_logits])
            if mode is ActionMode.generate:
                logits = logits / temperature
            log_softmax = _wide(logits).log_softmax(-1)
            source, owner = (torch.tensor(v, device=logits.device) for v in (scoring.source, scoring.owner))
            picked = log_softmax[source, torch.tensor(scoring.target, device=logits.device)]
            token_logprobs = picked.new_zeros(len(scoring.lengths)).index_add(0, owner, picked)
            if mode is ActionMode.generate:
                entropy = -(log_softmax.exp() * log_softmax).sum(-1)[source]
                token_entropy = entropy.new_zeros(len(scoring.lengths)).index_add(0, owner, entropy)
        lengths = torch.tensor(scoring.lengths, dtype=torch.float32, device=out.values.device)
        results, row = [], 0
        for b, query in enumerate(chunk):
            count = len(query.continuations)
            if mode is ActionMode.generate and count == 0:  # a value query
                results.append(QueryResult(out.values.new_zeros(0), out.values.new_zeros(()), out.values[b]))
            elif mode is ActionMode.generate:
                results.append(QueryResult(token_logprobs[row][None], token_entropy[row] / lengths[row], out.values[b]))
            else:
                if count == 0:
                    ids = [self._tokens(a)[0] for a in query.prompt.actions]
                    scores = _wide(out.last_logits[b, ids])
                else:
                    scores = token_logprobs[row : row + count]
                    if self.config.normalisation is Normalisation.mean:
                        scores = scores / lengths[row : row + count]
                logprobs = (scores / temperature).log_softmax(-1)
                results.append(QueryResult(logprobs, -(logprobs.exp() * logprobs).sum(), out.values[b]))
            row += count
        return results


def _wide(logits: Tensor) -> Tensor:
    """``logits`` in at least float32 (bf16 and fp16 log-softmaxes lose the small probabilities)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


@dataclass
class Scoring:
    """Where a batch's continuation tokens are scored: per token, the logits row that predicts it (``source``:
    a prompt's last token ``b``, or ``B + i`` for ``Rows.reads[i]``), the token, and its continuation."""

    source: list[int]
    target: list[int]
    owner: list[int]
    lengths: list[int]
    """Per continuation, its number of tokens."""
