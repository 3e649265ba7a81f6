"""Text → fixed-size vectors, for agents that need numbers (stable-baselines3, MLPs).

Two featurizers share one interface (:class:`TextFeatures`: a batch of texts in, a ``(n, dim)``
float32 array out, every row of L2 norm 1 or 0, so every value lies in ``[-1, 1]``):

* :class:`HashedNgrams` (the default): a signed, hashed bag of word and character n-grams. Fixed
  size, no fitting step, no dependencies, and the same vector in every process (CRC-32 of each word
  and a fixed polynomial over word codes and UTF-8 bytes, never Python's per-process ``hash``).
* :class:`SentenceEmbedding`: frozen, pooled hidden states of a ``transformers`` encoder (needs
  torch and transformers, imported only when the encoder loads).

Both memoise the vectors of recent texts: text envs revisit few distinct observations, so a step
usually costs one dictionary lookup.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

import numpy as np

WORD = re.compile(r"\w+|[^\w\s]")
"""A word token: a run of letters, digits and underscores, or one punctuation character."""

_PRIME = np.uint64(0x100000001B3)  # FNV-64's prime: the base of the n-gram polynomial


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: spreads every input bit over the 64 output bits (uint64 wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def ngram_hashes(units: np.ndarray, n: int, salt: int) -> np.ndarray:
    """64-bit hashes of every run of ``n`` consecutive ``units`` (uint64 codes), salted by family.

    The hash of ``u[i..i+n)`` is ``mix(salt + sum_k u[i+k] * PRIME**(n-1-k))`` modulo 2**64.
    """
    count = len(units) - n + 1
    if count <= 0:
        return np.empty(0, np.uint64)
    h = np.full(count, np.uint64(salt), np.uint64)
    for k in range(n):
        h = h * _PRIME + units[k : k + count]
    return _mix(h)


def scatter(hashes: np.ndarray, dim: int) -> np.ndarray:
    """Signed counts: hash ``h`` adds ±1 (its top bit) at index ``h mod dim``; unit L2 norm (or zeros)."""
    signs = 1.0 - 2.0 * (hashes >> np.uint64(63)).astype(np.float64)
    counts = np.bincount((hashes % np.uint64(dim)).astype(np.intp), weights=signs, minlength=dim)
    norm = np.linalg.norm(counts)
    return counts / norm if norm > 0 else counts


class FeatureKind(str, Enum):
    """Which featurizer a saved config names."""

    hashed_ngrams = "hashed_ngrams"
    sentence_embedding = "sentence_embedding"


class TextFeatures(ABC):
    """Texts in, a ``(len(texts), dim)`` float32 array out; vectors of recent texts are memoised.

    Subclasses are dataclasses whose init fields are their whole configuration (:meth:`config`);
    they set ``kind`` and write :meth:`_encode` and :attr:`dim`.
    """

    kind: ClassVar[FeatureKind]
    cache_size: int
    _memo: dict[str, np.ndarray]

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of each vector."""

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` vectors of distinct texts that are not memoised."""

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), np.float32)
        memo = self._memo
        misses = [text for text in dict.fromkeys(texts) if text not in memo]
        fresh = dict(zip(misses, self._encode(misses).clip(-1.0, 1.0).astype(np.float32))) if misses else {}
        vectors = np.stack([fresh[text] if text in fresh else memo[text] for text in texts])
        for text, vector in fresh.items():
            if len(memo) >= self.cache_size:
                if not memo:
                    break  # cache_size=0: memoise nothing
                del memo[next(iter(memo))]  # forget the oldest entry
            memo[text] = vector
        return vectors

    def config(self) -> dict[str, Any]:
        """What :func:`make_features` needs to build an equal featurizer (JSON-serialisable)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        return {"kind": self.kind.value, **{k: v.value if isinstance(v, Enum) else v for k, v in values.items()}}


@dataclass
class HashedNgrams(TextFeatures):
    """A signed, hashed bag of word n-grams and character n-grams, each family weighted equally.

    Words are lower-cased tokens (letter/digit runs and single punctuation characters); character
    n-grams run over the UTF-8 bytes of the (lower-cased) text, newlines included, so layout such
    as a grid row counts. Each family is scattered into ``dim`` signed buckets and normalised, then
    the two are summed and normalised again.

    Example::

        features = HashedNgrams(dim=512)
        vectors = features(["You are at row 1, column 2."])  # shape (1, 512), float32
    """

    kind: ClassVar[FeatureKind] = FeatureKind.hashed_ngrams
    dim: int = 512
    """Vector length (number of hash buckets)."""
    word_ngrams: list[int] = field(default_factory=lambda: [1, 2])
    """Smallest and largest word n-gram length; ``[]`` leaves words out."""
    char_ngrams: list[int] = field(default_factory=lambda: [3, 5])
    """Smallest and largest character n-gram length; ``[]`` leaves characters out."""
    lowercase: bool = True
    """Fold case before hashing."""
    cache_size: int = 100_000
    """Distinct texts whose vectors are memoised (0 turns memoising off)."""
    _memo: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim={self.dim} must be >= 1")
        for name in ("word_ngrams", "char_ngrams"):
            bounds = list(getattr(self, name))
            if bounds and (len(bounds) != 2 or not 1 <= bounds[0] <= bounds[1]):
                raise ValueError(f"{name}={bounds} must be [] or [min, max] with 1 <= min <= max, e.g. [1, 2]")
            setattr(self, name, bounds)
        if not self.word_ngrams and not self.char_ngrams:
            raise ValueError("word_ngrams and char_ngrams are both empty: set at least one, e.g. word_ngrams=[1, 2]")
        if self.cache_size < 0:
            raise ValueError(f"cache_size={self.cache_size} must be >= 0 (0 turns memoising off)")

    def vector(self, text: str) -> np.ndarray:
        """The float64 vector of one text (no memo)."""
        if self.lowercase:
            text = text.lower()
        families = []
        if self.word_ngrams:
            words = np.array([zlib.crc32(w.encode()) for w in WORD.findall(text)], np.uint64)
            families.append([ngram_hashes(words, n, salt=n) for n in range(self.word_ngrams[0], self.word_ngrams[1] + 1)])
        if self.char_ngrams:
            chars = np.frombuffer(text.encode(), np.uint8).astype(np.uint64)
            families.append([ngram_hashes(chars, n, salt=1000 + n)
                             for n in range(self.char_ngrams[0], self.char_ngrams[1] + 1)])
        total = sum(scatter(np.concatenate(hashes), self.dim) for hashes in families)
        norm = np.linalg.norm(total)
        return total / norm if norm > 0 else total

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vector(text) for text in texts])


class Pooling(str, Enum):
    """How :class:`SentenceEmbedding` turns token states into one vector."""

    mean = "mean"
    """The average of the last hidden states over the non-padding tokens."""
    cls = "cls"
    """The last hidden state of the first token (BERT's ``[CLS]``)."""


@dataclass
class SentenceEmbedding(TextFeatures):
    """Frozen sentence embeddings from a ``transformers`` encoder, pooled and L2-normalised.

    The encoder (``AutoModel`` and ``AutoTokenizer``) loads on first use, in eval mode and without
    gradients; ``dim`` is its hidden size.

    Example::

        features = SentenceEmbedding("path/to/all-MiniLM-L6-v2")  # a local directory or a hub id
        vectors = features(["You are at row 1, column 2."])      # shape (1, 384), float32
    """

    kind: ClassVar[FeatureKind] = FeatureKind.sentence_embedding
    encoder: str
    """A local model directory (or a hub id, loaded through the transformers cache)."""
    pooling: Pooling = Pooling.mean
    """How token states become one vector."""
    max_length: int = 256
    """Tokens per text; longer texts are truncated."""
    batch_size: int = 32
    """Texts per encoder forward."""
    device: str = "cpu"
    """Torch device of the encoder."""
    cache_size: int = 100_000
    """Distinct texts whose vectors are memoised (0 turns memoising off)."""
    _memo: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)
    _loaded: tuple[Any, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.pooling = Pooling(self.pooling)
        if self.max_length < 1 or self.batch_size < 1 or self.cache_size < 0:
            raise ValueError(
                f"need max_length >= 1, batch_size >= 1 and cache_size >= 0, got {self.max_length}, "
                f"{self.batch_size} and {self.cache_size}"
            )

    def load(self) -> tuple[Any, Any]:
        """The tokenizer and the frozen encoder (loaded once)."""
        if self._loaded is None:
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.encoder)
            model = AutoModel.from_pretrained(self.encoder).to(self.device).eval().requires_grad_(False)
            self._loaded = tokenizer, model
        return self._loaded

    @property
    def dim(self) -> int:
        return int(self.load()[1].config.hidden_size)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        tokenizer, model = self.load()
        vectors = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = tokenizer(texts[start : start + self.batch_size], padding=True, truncation=True,
                                  max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = model(**batch).last_hidden_state.float()
                if self.pooling is Pooling.cls:
                    pooled = hidden[:, 0]
                else:
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                vectors.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        return np.concatenate(vectors)


FEATURES: dict[FeatureKind, type[TextFeatures]] = {
    FeatureKind.hashed_ngrams: HashedNgrams,
    FeatureKind.sentence_embedding: SentenceEmbedding,
}
"""Each featurizer kind and its class."""


def make_features(config: dict[str, Any]) -> TextFeatures:
    """The featurizer that :meth:`TextFeatures.config` describes."""
    config = dict(config)
    return FEATURES[FeatureKind(config.pop("kind"))](**config)
