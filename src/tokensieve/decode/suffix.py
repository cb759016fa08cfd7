"""Suffix drafting: SuffixDecoding (Oliaro et al., arXiv 2411.04975; vLLM's `suffix` method), without a model.

Two suffix tries hold every substring (up to `DEPTH` tokens) of what was seen, with how often it occurred: one for
this request (its prompt and the tokens decoded so far) and one shared across requests (earlier outputs, and
calibration text). A step matches the longest suffix of the context that occurred before and has a continuation,
then grows a tree from the match best-first, each node's score the empirical probability of its path (a child's
count over its parent's continuations, multiplied down the path).

How many nodes to verify is chosen per step from the measured price of verification (`decode.cost`): a tree of
the n best nodes is expected to yield 1 + (sum of their path probabilities) tokens for cost(n + 1) one-token
steps, and the step drafts the n with the best ratio, none at all when no tree beats a greedy step. So the tree's
size follows the machine's cost curve rather than a fixed default.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from tokensieve.decode.cost import measured_cost
from tokensieve.decode.tree import DraftTree
from tokensieve.decode.verify import Verifier
from tokensieve.errors import TokensieveError

DEPTH = 32  # the longest substring a trie keeps: a match plus the draft below it
MAX_MATCH = 16  # the longest context suffix matched
MAX_NODES = 32  # the widest tree a step may verify
# A pseudo-count for the continuation not seen yet, UNSEEN / (the path's context length): a continuation seen once
# after a one-token match scores 1/5, after a 12-token match 3/4, so short matches draft small trees and long ones
# deep chains. Chosen on SmolLM2's HumanEval prompts 0-11 (1.2x greedy at a flat 1, 1.6x at 4 / depth); the
# published figures use prompts those never were (docs/DECODE.md).
UNSEEN = 4.0


class Node:
    __slots__ = ("children", "count", "depth", "total")

    def __init__(self, depth: int) -> None:
        self.children: dict[int, Node] = {}
        self.count = 0  # occurrences of this node's path
        self.total = 0  # occurrences of a continuation after it (sum of the children's counts)
        self.depth = depth


class SuffixTrie:
    """Every substring of at most `depth` tokens of the inserted sequences is a path from the root."""

    def __init__(self, depth: int = DEPTH) -> None:
        if depth < 2:
            raise TokensieveError(f"a suffix trie needs depth >= 2, got {depth}")
        self.depth = depth
        self.root = Node(0)
        self.nodes = 1

    def open(self) -> list[Node]:
        """The insertion state of a new sequence: the nodes of its suffixes (just the root, for the empty one)."""
        return [self.root]

    def extend(self, state: list[Node], tokens: Sequence[int]) -> list[Node]:
        """Append `tokens` to the sequence whose suffix nodes are `state`; returns the new state, deepest last."""
        for token in tokens:
            grown = [self.root]
            for node in state:
                child = node.children.get(token)
                if child is None:
                    child = node.children[token] = Node(node.depth + 1)
                    self.nodes += 1
                child.count += 1
                node.total += 1
                if child.depth < self.depth:
                    grown.append(child)
            state = grown
        return state

    def insert(self, tokens: Sequence[int]) -> None:
        self.extend(self.open(), tokens)

    def match(self, context: Sequence[int], longest: int = MAX_MATCH) -> Node | None:
        """The node of the longest suffix of `context` (at most `longest` tokens) that has a continuation."""
        for length in range(min(longest, len(context), self.depth - 1), 0, -1):
            node = self.root
            for token in context[len(context) - length:]:
                node = node.children.get(token)
                if node is None:
                    break
            if node is not None and node.children:
                return node
        return None


def continuations(node: Node) -> float:
    """The continuations seen after `node`'s path plus the pseudo-count of one not seen yet, which shrinks as the
    context the path conditions on grows."""
    return node.total + UNSEEN / max(node.depth, 1)


def grow(match: Node, nodes: int, depth: int) -> tuple[list[int], list[int], list[float]]:
    """The `nodes` best continuations below `match`, at most `depth` levels deep, best-first: (tokens, parents as
    draft indices with 0 the root, path probabilities). Best-first keeps the probabilities non-increasing and puts
    every parent before its children."""
    tokens: list[int] = []
    parents: list[int] = []
    probs: list[float] = []
    frontier = [(-child.count / continuations(match), token, 0, 1, child) for token, child in match.children.items()]
    heapq.heapify(frontier)
    while frontier and len(tokens) < nodes and depth > 0:
        neg, token, parent, level, node = heapq.heappop(frontier)
        tokens.append(token)
        parents.append(parent)
        probs.append(-neg)
        if node.total and level < depth:
            for t, child in node.children.items():
                heapq.heappush(frontier, (neg * child.count / continuations(node), t, len(tokens), level + 1, child))
    return tokens, parents, probs


def best_size(probs: list[float], cost: CostCurve) -> int:
    """How many of the best-first nodes to verify: the n maximising (1 + their summed probabilities) / cost(n + 1),
    0 when no tree beats a one-token step."""
    best, best_rate, expected = 0, 1.0 / cost(1), 1.0
    for n, p in enumerate(probs, 1):
        expected += p
        rate = expected / cost(n + 1)
        if rate > best_rate:
            best, best_rate = n, rate
    return best


@dataclass(frozen=True)
class CostCurve:
    """Seconds of a forward of T tokens over a one-token step's, measured at some T (`decode.cost`), linear in
    between and beyond the last two points."""

    points: tuple[tuple[int, float], ...]

    @classmethod
    def measured(cls, seconds: dict[int, float]) -> CostCurve:
        if 1 not in seconds or len(seconds) < 2:
            raise TokensieveError("a cost curve needs the one-token step and at least one wider forward")
        return cls(tuple(sorted((t, s / seconds[1]) for t, s in seconds.items())))

    def __call__(self, tokens: int) -> float:
        points = self.points
        for (t0, c0), (t1, c1) in zip(points, points[1:], strict=False):
            if tokens <= t1 or (t1, c1) == points[-1]:
                return c0 + (c1 - c0) * (tokens - t0) / (t1 - t0)
        return points[0][1]


@dataclass
class SuffixCache:
    """The trie shared across requests: earlier outputs and calibration text (`warm`)."""

    depth: int = DEPTH
    trie: SuffixTrie = field(init=False)

    def __post_init__(self) -> None:
        self.trie = SuffixTrie(self.depth)

    def warm(self, texts: list[list[int]]) -> None:
        for tokens in texts:
            self.trie.insert(tokens)


@dataclass
class Suffix:
    """The drafter: see the module doc. `cost` is this model's verification cost curve, `shared` the cross-request
    trie (a fresh one when none is given)."""

    cost: CostCurve | None = None  # None: measured on `verifier` at the first `start`
    shared: SuffixCache = field(default_factory=SuffixCache)
    verifier: Verifier | None = None
    cost_key: tuple = ()
    max_nodes: int = MAX_NODES
    name = "suffix"

    def __post_init__(self) -> None:
        if self.cost is None and self.verifier is None:
            raise TokensieveError("the suffix drafter needs a cost curve or a verifier to measure one on")
        self.start([])

    def prepare(self) -> None:
        """Measure the cost curve on the prefilled cache if none was given (once per model, policy and linears)."""
        if self.cost is None:
            self.cost = CostCurve.measured(measured_cost(self.verifier, self.cost_key))

    def start(self, prompt: list[int]) -> None:
        if prompt:
            self.prepare()
        self.local = SuffixTrie(self.shared.depth)
        self.state = self.local.extend(self.local.open(), prompt)
        self.seen = len(prompt)  # tokens of the context inserted into the local trie

    def draft(self, root: int, history: list[int], depth: int | None) -> tuple[DraftTree, Tensor]:
        context = [*history, root]
        self.state = self.local.extend(self.state, context[self.seen:])
        self.seen = len(context)
        depth = self.shared.depth if depth is None else depth
        best: tuple[float, list[int], list[int]] = (1.0 / self.cost(1), [], [])
        for trie in (self.local, self.shared.trie):
            match = trie.match(context)
            if match is None:
                continue
            tokens, parents, probs = grow(match, self.max_nodes, depth)
            n = best_size(probs, self.cost)
            rate = (1 + sum(probs[:n])) / self.cost(n + 1)
            if rate > best[0]:
                best = (rate, tokens[:n], parents[:n])
        _, tokens, parents = best
        tree = DraftTree((-1, *parents), (0, *_sibling_ranks(parents)))
        return tree, torch.tensor([root, *tokens])

    def observe(self, tokens: Tensor, logits: Tensor) -> None:
        pass

    def finish(self, generated: list[int]) -> None:
        """The request's output joins the shared trie (SuffixDecoding's global tree of earlier responses)."""
        self.shared.trie.insert(generated)


def _sibling_ranks(parents: list[int]) -> list[int]:
    seen: dict[int, int] = {}
    ranks = []
    for parent in parents:
        ranks.append(seen.get(parent, 0))
        seen[parent] = ranks[-1] + 1
    return ranks
