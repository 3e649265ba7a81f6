"""Candidate continuations laid out as a token trie: one node per distinct token prefix, in depth-first preorder.

The K candidate actions of a prompt often share long token prefixes ("move A onto B", "move A onto C",
"move A to the table"). Packed after their prompt as a trie, each shared prefix runs once. In preorder a
node's subtree is the run of nodes right after it, up to ``end`` (exclusive), so one rule gives the whole
attention mask: token ``i`` attends to token ``j`` iff ``j <= i < end[j]`` (a node sees its ancestors and
itself; the prompt's tokens, whose subtree is the whole row, are seen by all). A node at depth ``d`` sits at
position ``prompt length + d``, as in its candidate's own forward pass, and is predicted by its parent's
next-token logits (the prompt's last token's for depth 0). A single chain (one generated answer) is the trie
without branches.

>>> trie = Trie.build(((5, 7, 0), (5, 8, 0), (5, 0)))
>>> trie.tokens, trie.depth, trie.end
((5, 7, 0, 8, 0, 0), (0, 1, 2, 1, 2, 1), (6, 3, 3, 5, 5, 6))
>>> trie.reads, trie.sources
((0, 1, 3), ((-1, 0, 1), (-1, 0, 2), (-1, 0)))
"""

from __future__ import annotations

from dataclasses import dataclass, field

Tokens = tuple[int, ...]


@dataclass(frozen=True)
class Trie:
    """The trie of ``continuations`` (compared and hashed by them alone: the rest follows from them)."""

    continuations: tuple[Tokens, ...]
    """The candidates' token ids, in their actions' order (equal candidates share their nodes)."""
    tokens: Tokens = field(compare=False, repr=False)
    """Per node, in preorder: its token."""
    depth: tuple[int, ...] = field(compare=False, repr=False)
    """Per node: its depth (0 for a candidate's first token)."""
    end: tuple[int, ...] = field(compare=False, repr=False)
    """Per node: one past the last node of its subtree."""
    reads: tuple[int, ...] = field(compare=False, repr=False)
    """The nodes with children, in preorder: each one's next-token logits are read once."""
    sources: tuple[tuple[int, ...], ...] = field(compare=False, repr=False)
    """Per continuation and token: the index in ``reads`` of the node that predicts it (-1: the prompt's last token)."""

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, continuations: tuple[Tokens, ...]) -> Trie:
        children: dict[Tokens, list[Tokens]] = {(): []}  # by prefix; children in order of first appearance
        for tokens in continuations:
            for d in range(len(tokens)):
                if tokens[: d + 1] not in children:
                    children[tokens[: d + 1]] = []
                    children[tokens[:d]].append(tokens[: d + 1])
        order: dict[Tokens, int] = {}  # preorder index of each prefix (the root excluded)
        stack = children[()][::-1]
        while stack:
            node = stack.pop()
            order[node] = len(order)
            stack += children[node][::-1]
        end = [0] * len(order)
        for node in reversed(order):  # children before their parent: a subtree ends where its last child's ends
            end[order[node]] = end[order[children[node][-1]]] if children[node] else order[node] + 1
        reads = tuple(order[node] for node in order if children[node])
        read_index = {node: r for r, node in enumerate(reads)}
        sources = tuple(tuple(-1 if s == 0 else read_index[order[tokens[:s]]] for s in range(len(tokens)))
                        for tokens in continuations)
        return cls(continuations, tuple(node[-1] for node in order), tuple(len(node) - 1 for node in order),
                   tuple(end), reads, sources)
