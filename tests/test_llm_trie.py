"""The token trie of candidate continuations: its preorder layout, and the attention mask it gives a packed row."""

from __future__ import annotations

import random

import torch

from textgym.policies.llm_network import Rows, attention_mask
from textgym.policies.llm_trie import Trie


def prefixes(continuations) -> list[tuple[int, ...]]:
    """The distinct non-empty token prefixes, in first appearance (brute force: what the nodes must be)."""
    return list(dict.fromkeys(c[: d + 1] for c in continuations for d in range(len(c))))


def test_a_small_trie_in_preorder() -> None:
    # "ab", "ac", "a" (a prefix of both), "ab" again, "d"
    trie = Trie.build(((1, 2), (1, 3), (1,), (1, 2), (4,)))
    assert trie.tokens == (1, 2, 3, 4) and trie.depth == (0, 1, 1, 0) and trie.end == (3, 2, 3, 4)
    assert trie.reads == (0,)  # only "a" has children
    assert trie.sources == ((-1, 0), (-1, 0), (-1,), (-1, 0), (-1,))
    assert len(Trie.build(())) == 0 and Trie.build(((5, 6, 7),)).end == (3, 3, 3)  # a chain: all see all before


def test_random_tries_match_the_prefix_relation() -> None:
    rng = random.Random(0)
    for _ in range(100):
        continuations = tuple(tuple(rng.choice((1, 2, 3)) for _ in range(rng.randint(1, 5)))
                              for _ in range(rng.randint(1, 8)))
        trie = Trie.build(continuations)
        nodes: list[tuple[int, ...]] = []  # each node's prefix, read off the preorder: its parent's, then its token
        for token, depth in zip(trie.tokens, trie.depth):
            parent = next((n for n in reversed(nodes) if len(n) == depth), ()) if depth else ()
            nodes.append((*parent, token))
        assert sorted(nodes) == sorted(prefixes(continuations))  # one node per distinct prefix
        for i, a in enumerate(nodes):
            for j, b in enumerate(nodes):  # j's subtree holds i exactly when j's prefix starts i's
                assert (j <= i < trie.end[j]) == (a[: len(b)] == b)
        assert [nodes[r] for r in trie.reads] == [a for a in nodes if any(b[:-1] == a for b in nodes)]
        for c, sources in zip(continuations, trie.sources):  # token s is read from the node of c[:s]
            assert sources[0] == -1 and [nodes[trie.reads[r]] for r in sources[1:]] == [c[:s] for s in range(1, len(c))]


def test_the_mask_lets_a_node_see_the_prompt_and_its_ancestors_only() -> None:
    trie = Trie.build(((1, 2), (1, 3), (4,)))  # nodes "1", "2", "3", "4" after a 2-token prompt; then padding
    width = 2 + len(trie) + 1
    end = torch.tensor([[width, width, *(2 + e for e in trie.end), width - 1],
                        [width, width, width, 3, 4, 5, 6]])  # a second row: a 3-token prompt, then padding
    x = Rows(torch.zeros(2, width, 1), torch.zeros(2, width, dtype=torch.long), end, torch.tensor([1, 2]),
             torch.zeros(0, dtype=torch.long))
    allowed = attention_mask(x, prefix_length=1, implementation="sdpa", dtype=torch.float32)[:, 0]
    assert allowed.shape == (2, width, 1 + width) and allowed[..., 0].all()  # every token sees the prefix
    expected = torch.tensor([
        [[1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0],  # the prompt: causal
         [1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0],  # "1", and "2" under it
         [1, 1, 1, 0, 1, 0, 0], [1, 1, 0, 0, 0, 1, 0],  # "3" sees "1" but not its sibling "2"; "4" neither
         [1, 1, 0, 0, 0, 0, 0]],                       # padding sees the prompt, and nobody sees it
        [[1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]] + [[1, 1, 1, 0, 0, 0, 0]] * 5,
    ], dtype=torch.bool)
    assert torch.equal(allowed[..., 1:], expected)
    additive = attention_mask(x, 1, "eager", torch.float32)[:, 0]
    assert torch.equal(additive == 0, allowed)
