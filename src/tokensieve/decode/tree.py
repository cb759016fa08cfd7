"""Static draft trees: which candidate (rank) of which parent each draft node is, and the masks that verify a
whole tree in one forward (tree attention, as in SpecInfer and Token Recycling)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import torch
from torch import Tensor

from tokensieve.errors import TokensieveError


@dataclass(frozen=True)
class DraftTree:
    """Node 0 is the root (the last accepted token, not yet in the cache); node i > 0 is the `ranks[i]`-th
    candidate after its parent `parents[i]`. Nodes are in breadth-first order (a parent precedes its children)."""

    parents: tuple[int, ...]
    ranks: tuple[int, ...]
    depths: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.parents) != len(self.ranks) or not self.parents or self.parents[0] != -1:
            raise TokensieveError("a draft tree needs parents and ranks of equal length, node 0 the root (-1)")
        depths = [0]
        for i, parent in enumerate(self.parents[1:], 1):
            if not 0 <= parent < i:
                raise TokensieveError(f"draft-tree node {i}: its parent {parent} must come before it")
            depths.append(depths[parent] + 1)
        object.__setattr__(self, "depths", tuple(depths))

    @classmethod
    def chain(cls, length: int) -> DraftTree:
        """A single path of `length` draft tokens (prompt lookup, layer-skip drafting)."""
        return cls(tuple(range(-1, length)), (0, *[0] * length))

    @classmethod
    def by_prior(cls, nodes: int, depth: int, k: int, decay: float = 0.5) -> DraftTree:
        """The `nodes` draft paths most likely under a rank prior: the r-th candidate is accepted with probability
        ~ decay ** r, independently per level, so a path's prior is the product along it. The best paths of a
        product prior are closed under prefixes, so they form a tree. Wider `k` and deeper `depth` only allow it."""
        if nodes < 0 or depth < 0 or k < 1 or not 0 < decay < 1:
            raise TokensieveError("a draft tree needs nodes >= 0, depth >= 0, k >= 1 and 0 < decay < 1")
        parents, ranks, index = [-1], [0], {(): 0}
        frontier = [(-(decay ** r), r, (r,), 0) for r in range(k)] if depth else []  # (-prior, tie, path, parent)
        heapq.heapify(frontier)
        tie = k
        while frontier and len(parents) <= nodes:
            neg, _, path, parent = heapq.heappop(frontier)
            index[path] = len(parents)
            parents.append(parent)
            ranks.append(path[-1])
            if len(path) < depth:
                for r in range(k):
                    tie += 1
                    heapq.heappush(frontier, (neg * decay ** r, tie, (*path, r), index[path]))
        return cls._breadth_first(parents, ranks)

    @classmethod
    def from_paths(cls, paths: list[list[int]]) -> DraftTree:
        """A tree from its rank paths, e.g. [[0], [1], [0, 0]] (Token Recycling's and Medusa's notation); every
        prefix of a path must be a path too."""
        known = {(): 0}
        parents, ranks = [-1], [0]
        for path in sorted({tuple(p) for p in paths}, key=lambda p: (len(p), p)):
            if not path or any(r < 0 for r in path) or path[:-1] not in known:
                raise TokensieveError(f"draft-tree path {list(path)}: empty, negative, or its prefix is missing")
            known[path] = len(parents)
            parents.append(known[path[:-1]])
            ranks.append(path[-1])
        return cls(tuple(parents), tuple(ranks))

    @classmethod
    def _breadth_first(cls, parents: list[int], ranks: list[int]) -> DraftTree:
        depth = [0] * len(parents)
        for i in range(1, len(parents)):
            depth[i] = depth[parents[i]] + 1
        order = sorted(range(len(parents)), key=lambda i: (depth[i], i))
        new = {old: pos for pos, old in enumerate(order)}
        return cls(tuple(-1 if parents[o] < 0 else new[parents[o]] for o in order), tuple(ranks[o] for o in order))

    @property
    def size(self) -> int:
        return len(self.parents)

    @property
    def depth(self) -> int:
        return max(self.depths)

    @property
    def max_rank(self) -> int:
        return max(self.ranks[1:], default=0)

    def cut(self, depth: int) -> DraftTree:
        """The nodes at most `depth` below the root (a cache close to its eviction point takes fewer tokens)."""
        if depth >= self.depth:
            return self
        keep = [i for i in range(self.size) if self.depths[i] <= depth]
        new = {old: pos for pos, old in enumerate(keep)}
        return DraftTree(tuple(-1 if self.parents[o] < 0 else new[self.parents[o]] for o in keep),
                         tuple(self.ranks[o] for o in keep))

    def ancestors(self, node: int) -> list[int]:
        """The path root..node (node included), in order."""
        path = []
        while node >= 0:
            path.append(node)
            node = self.parents[node]
        return path[::-1]

    def visibility(self, device=None) -> Tensor:
        """bool [size, size]: node i sees node j when j is on the path root..i."""
        seen = torch.zeros(self.size, self.size, dtype=torch.bool)
        for i in range(self.size):
            seen[i, self.ancestors(i)] = True
        return seen.to(device)

    def children(self) -> list[dict[int, int]]:
        """Per node: rank -> child node."""
        out: list[dict[int, int]] = [{} for _ in range(self.size)]
        for i in range(1, self.size):
            out[self.parents[i]][self.ranks[i]] = i
        return out
