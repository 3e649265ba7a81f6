"""An LLM policy with a value head: chooses among the valid actions by their likelihood, or writes its answer.

The prompt is the chat template over the env's instructions (system turn) and the observation, after a
bounded window of earlier turns (user turn). How one forward pass serves a state:

* the instructions prefix is encoded once into a KV cache by the base model (adapters off) and reused;
* the frozen layers below the adapted ones run once per distinct prompt, and their output is cached;
* equal prompts in a batch (or, with a ``memo``, in a whole rollout) share one pass;
* in score mode, single-token actions read the K next-token logits after the prompt; multi-token
  actions are scored as continuations (each ends with the end token, so that "1" is not a free prefix
  of "16") packed after the prompt as a token trie: a token prefix shared by several actions runs once,
  each node attends to the prompt and its ancestors, and a candidate's log-prob sums its tokens' along
  its path (see :mod:`textgym.policies.llm_trie`); a generated answer is a trie of one chain;
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
from textgym.policies.llm_memory import MB, ByteLRU, nbytes
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
from textgym.policies.llm_trie import Trie

Choice = int | tuple[int, ...]
"""Score mode: the index of the chosen action; generate mode: the generated token ids."""


@dataclass(frozen=True)
class Query:
    """One forward unit: a prompt and the trie of the continuations scored after it (empty: single-token actions,
    or a value query in generate mode)."""

    prompt: Prompt
    trie: Trie


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


Memo = dict[Query, QueryResult] | ByteLRU[Query, QueryResult]
"""Results shared across forward calls while the weights stay as they are: a rollout's dict, or :meth:`LLMPolicy.act`'s
bounded cache."""


def _result_bytes(result: QueryResult) -> int:
    return sum(nbytes(t) for t in (result.logprobs, result.entropy, result.value))


def _query_bytes(query: Query) -> int:
    """The query's own text and actions (its instructions and trie are shared by every prompt of its env)."""
    return nbytes(query.prompt.text) + nbytes(query.prompt.actions)


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
        self._tokenized: ByteLRU[str | tuple[str, ...], list | Trie] = ByteLRU(int(config.token_cache_mb * MB))
        """Token ids of texts (by the text) and the tries of action sets' scored continuations (by the actions)."""
        self._acted: ByteLRU[Query, QueryResult] = ByteLRU(int(config.result_cache_mb * MB), _result_bytes, _query_bytes)
        self._acted_weights: tuple[tuple[int, int], ...] = ()
        """Where and at which version the trained weights were when ``_acted`` was filled."""
        if config.init_from is not None:
            self.load_weights(config.init_from)

    # ---- the Policy interface ---------------------------------------------------------------------
    def act(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        with torch.no_grad():
            return self.decide(observations, infos, greedy=self.config.greedy, memo=self._acting_memo()).actions

    def action_probabilities(
        self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, float]] | None:
        """In score mode, the softmax that :meth:`act` samples from (one-hot on its argmax when greedy), for
        prompts without earlier turns; None in generate mode, whose answers are free text."""
        if self.config.action_mode is ActionMode.generate:
            return None
        prompts = History(self.config.history).prompts(observations, infos)
        queries = [self._query(p) for p in prompts]
        with torch.no_grad():
            results = self._results(queries, self._acting_memo())
        out = []
        for prompt, query in zip(prompts, queries):
            logprobs = results[query].logprobs
            best = int(logprobs.argmax())
            probabilities = ([float(i == best) for i in range(len(logprobs))] if self.config.greedy
                             else logprobs.exp().tolist())
            out.append(dict(zip(prompt.actions, probabilities)))
        return out

    def _acting_memo(self) -> ByteLRU[Query, QueryResult]:
        """The results :meth:`act` reuses (an evaluation revisits states, and shows idle slots a playing one's),
        emptied as soon as a trained weight changes: an optimizer step or a load bumps its version, a move changes
        its storage."""
        weights = tuple((p.data_ptr(), p._version) for group in self.trainable_parameters() for p in group)
        if weights != self._acted_weights:
            self._acted.clear()
            self._acted_weights = weights
        return self._acted

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
        self._acted.clear()
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
        memo: Memo | None = None,
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
        queries = [Query(p, Trie.build(())) if self.config.action_mode is ActionMode.generate else self._query(p)
                   for p in prompts]
        results = self._results(queries)
        return torch.stack([results[q].value for q in queries])

    def evaluate(
        self,
        prompts: Sequence[Prompt],
        choices: Sequence[Choice],
        memo: Memo | None = None,
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
        queries = [self._unit(p, c, mode) for p, c in zip(prompts, choices)]
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
        """Score mode: the prompt with the trie of its actions (empty when they are all single tokens)."""
        return Query(prompt, self._tokenized.fetch(prompt.actions, lambda: self._trie(prompt.actions)))

    def _trie(self, actions: tuple[str, ...]) -> Trie:
        tokens = [tuple(self._tokens(action)) for action in actions]
        if all(len(t) == 1 for t in tokens) and len(set(tokens)) == len(tokens):
            return Trie.build(())
        return Trie.build(tuple(t + (self.tokenizer.eos_token_id,) for t in tokens))

    def _unit(self, prompt: Prompt, choice: Choice, mode: ActionMode | None = None) -> Query:
        """The query that evaluates ``choice`` in ``prompt`` in ``mode`` (by default the policy's): its actions' trie,
        or the one chain of its answer."""
        if (self.config.action_mode if mode is None else mode) is ActionMode.generate:
            return Query(prompt, Trie.build((choice,)))
        return self._query(prompt)

    def forward_unit(self, prompt: Prompt, choice: Choice, mode: ActionMode | None = None) -> tuple[Query, int]:
        """The forward unit that evaluates ``choice`` in ``prompt`` in ``mode`` (by default the policy's; equal units
        share one pass) and its token count in the trainable layers: the dynamic prompt and the trie nodes packed
        after it."""
        query = self._unit(prompt, choice, mode)
        return query, self._length(query)

    def prefix_length(self, instructions: str) -> int:
        """Tokens of the instructions prefix (encoded once into a KV cache)."""
        return len(self._tokens(self.chat.prefix(instructions)))

    def _length(self, query: Query) -> int:
        """Tokens of the query's packed row: its dynamic prompt and its trie's nodes."""
        return len(self._tokens(self.chat.dynamic(query.prompt.text))) + len(query.trie)

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
        self, queries: Sequence[Query], memo: Memo | None = None, mode: ActionMode | None = None
    ) -> dict[Query, QueryResult]:
        """The result of each distinct query in ``mode`` (by default the policy's), batched per instructions prefix;
        ``memo`` is read and filled."""
        mode = self.config.action_mode if mode is None else mode
        distinct = dict.fromkeys(queries)
        results = {} if memo is None else {q: memo[q] for q in distinct if q in memo}
        todo = defaultdict(list)
        for query in distinct:
            if query not in results:
                todo[query.prompt.instructions].append(query)
        for instructions, group in todo.items():
            prefix = self._prefix(instructions)
            for chunk in self._chunks(group):
                x, scoring = self._batch(chunk, [self._lower_states(q, prefix) for q in chunk])
                out = self.forward_module(prefix, x)
                self.tokens_forwarded += sum(self._length(q) for q in chunk)
                for query, result in zip(chunk, self._read(chunk, out, scoring, mode)):
                    results[query] = result
                    if memo is not None:
                        memo[query] = result
        return results

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
        return [*self._tokens(self.chat.dynamic(query.prompt.text)), *query.trie.tokens]

    def _batch(self, chunk: Sequence[Query], hidden: Sequence[Tensor]) -> tuple[Rows, Scoring]:
        """The queries' packed rows (prompt, then trie; right-padded), and where their candidates' tokens are scored."""
        width = max(len(h) for h in hidden)
        positions = torch.zeros(len(chunk), width, dtype=torch.long)
        end = torch.arange(width).repeat(len(chunk), 1)  # padding: seen by nobody
        last, reads, scoring = [], [], Scoring([], [], [], [])
        for b, query in enumerate(chunk):
            trie, length = query.trie, len(self._tokens(self.chat.dynamic(query.prompt.text)))
            positions[b, :length] = torch.arange(length)
            end[b, :length] = width
            positions[b, length : length + len(trie)] = length + torch.tensor(trie.depth, dtype=torch.long)
            end[b, length : length + len(trie)] = length + torch.tensor(trie.end, dtype=torch.long)
            last.append(length - 1)
            first_read = len(chunk) + len(reads)  # the logits rows of this trie's reads (after the B prompts' last)
            reads += [b * width + length + node for node in trie.reads]
            for tokens, sources in zip(trie.continuations, trie.sources):
                scoring.source += [b if s < 0 else first_read + s for s in sources]
                scoring.target += tokens
                scoring.owner += [len(scoring.lengths)] * len(tokens)
                scoring.lengths.append(len(tokens))
        device = hidden[0].device
        x = Rows(pad_sequence(list(hidden), batch_first=True), positions.to(device), end.to(device),
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
            count = len(query.trie.continuations)
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
    """Where a batch's continuation tokens are scored: per token of each continuation, the logits row that predicts
    it (``source``: a prompt's last token ``b``, or ``B + i`` for ``Rows.reads[i]``, the token's parent node in
    its trie), the token, and its continuation."""

    source: list[int]
    target: list[int]
    owner: list[int]
    lengths: list[int]
    """Per continuation, its number of tokens."""
