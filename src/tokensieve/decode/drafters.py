"""Drafters: what a tree step proposes. Each one is training-free and needs no second model.

- `Recycling` — Token Recycling (Luo et al., arXiv 2408.08696): a static tree filled from the adjacency matrix of
  the candidates earlier steps computed and threw away.
- `Lookup` — prompt lookup decoding (Saxena 2023; transformers' `prompt_lookup_num_tokens`): the tokens that
  followed the latest earlier occurrence of the last n-gram.
- `LayerSkip` — self-speculation by early exit (Draft & Verify, Zhang et al., arXiv 2309.08168; LayerSkip,
  Elhoushi et al., arXiv 2404.16710, without its training): the first layers plus the LM head draft a chain.
- `decode.suffix.Suffix` — SuffixDecoding (arXiv 2411.04975): suffix tries of this request and of earlier ones.

A drafter: `prepare()` once after the prefill, before the decode clock starts; `start(prompt)`; per step
`draft(root, history, depth)` and `observe(tokens, logits)`; `finish(generated)` at the end.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from itertools import pairwise

import torch
from torch import Tensor

from tokensieve.decode.adjacency import Adjacency
from tokensieve.decode.tree import DraftTree
from tokensieve.errors import TokensieveError

# The default tree for CPUs. A one-token step runs the weights as matrix-vector products; any wider forward
# switches to matrix-matrix kernels and costs ~1.7-2.7x at once, then grows slowly up to ~13 tokens and faster
# after (docs/DECODE.md, measured). So: about 12 nodes, where width is nearly free (the paper's GPU tree has 80
# nodes over 6 levels).
CPU_TREE = dict(nodes=12, depth=5, k=8, decay=0.4)


@dataclass
class Recycling:
    adjacency: Adjacency
    shape: DraftTree = field(default_factory=lambda: DraftTree.by_prior(**CPU_TREE))
    name = "recycling"

    def __post_init__(self) -> None:
        if self.shape.max_rank >= self.adjacency.k:
            raise TokensieveError(f"the draft tree uses candidate rank {self.shape.max_rank}, the adjacency "
                                  f"matrix keeps {self.adjacency.k} per token")
        self._plans: dict[int, tuple] = {}

    def _plan(self, tree: DraftTree) -> tuple:
        if tree.size not in self._plans:
            device = self.adjacency.table.device
            bounds = [tree.depths.index(d) for d in range(1, tree.depth + 1)] + [tree.size]
            self._plans[tree.size] = (torch.tensor(tree.parents, device=device),
                                      torch.tensor(tree.ranks, device=device),
                                      [slice(a, b) for a, b in pairwise(bounds)])
        return self._plans[tree.size]

    @property
    def max_nodes(self) -> int:
        return self.shape.size

    def prepare(self) -> None:
        pass

    def start(self, prompt: list[int]) -> None:
        self.adjacency.seed(prompt)

    def draft(self, root: int, history: list[int], depth: int | None) -> tuple[DraftTree, Tensor]:
        tree = self.shape if depth is None else self.shape.cut(depth)
        parents, ranks, levels = self._plan(tree)
        return tree, self.adjacency.draft(root, parents, ranks, levels)

    def observe(self, tokens: Tensor, logits: Tensor) -> None:
        self.adjacency.update(tokens, logits)

    def finish(self, generated: list[int]) -> None:
        pass


class ChainDrafter:
    """A drafter of one chain of up to `length` tokens that learns nothing from the verified logits."""

    length: int

    @property
    def max_nodes(self) -> int:
        return self.length + 1

    def prepare(self) -> None:
        pass

    def start(self, prompt: list[int]) -> None:
        pass

    def observe(self, tokens: Tensor, logits: Tensor) -> None:
        pass

    def finish(self, generated: list[int]) -> None:
        pass


@dataclass
class Lookup(ChainDrafter):
    """Drafts up to `length` tokens after the latest earlier match of the last `max_ngram`..`min_ngram` tokens."""

    length: int = 8
    max_ngram: int = 3
    min_ngram: int = 1
    name = "lookup"

    def draft(self, root: int, history: list[int], depth: int | None) -> tuple[DraftTree, Tensor]:
        text = history + [root]
        length = self.length if depth is None else min(self.length, depth)
        proposal: list[int] = []
        for n in range(min(self.max_ngram, len(text) - 1), self.min_ngram - 1, -1):
            suffix = text[-n:]
            for start in range(len(text) - n - 1, -1, -1):
                if text[start:start + n] == suffix:
                    proposal = text[start + n:start + n + length]
                    break
            if proposal:
                break
        return DraftTree.chain(len(proposal)), torch.tensor([root, *proposal])

@dataclass
class LayerSkip(ChainDrafter):
    """Drafts `length` tokens greedily with a subset of the layers, then restores the skipped ones: the full model
    verifies the chain. `exit_layer` k > 0 drafts with the first k layers (early exit); `skip` names the layers to
    leave out instead (Draft & Verify's intermediate-layer skipping). The drafting layers read and extend the
    model's own cache rows, rolled back after the draft."""

    model: torch.nn.Module
    verifier: object  # decode.verify.Verifier: its cache and session
    exit_layer: int = 0  # 0 and no `skip`: half of the layers
    length: int = 4
    skip: tuple[int, ...] = ()
    name = "layerskip"

    def __post_init__(self) -> None:
        decoder = self.model.get_decoder()
        layers = getattr(decoder, "layers", None)
        if layers is None:
            raise TokensieveError(f"{type(self.model).__name__} keeps no `layers` list: layer-skip cannot draft")
        n = len(layers)
        if self.skip:
            if any(not 0 <= i < n for i in self.skip) or len(set(self.skip)) >= n:
                raise TokensieveError(f"layers to skip must be distinct, in 0..{n - 1}, and leave one layer")
            self.kept = [i for i in range(n) if i not in set(self.skip)]
        else:
            exit_layer = self.exit_layer or max(1, n // 2)
            if not 0 < exit_layer < n:
                raise TokensieveError(f"exit layer {exit_layer} must be in 1..{n - 1}")
            self.kept = list(range(exit_layer))
        self.decoder, self.layers = decoder, layers

    def draft(self, root: int, history: list[int], depth: int | None) -> tuple[DraftTree, Tensor]:
        length = self.length if depth is None else min(self.length, depth)
        if length == 0:
            return DraftTree.chain(0), torch.tensor([root])
        cache, session = self.verifier.cache, self.verifier.session
        drafting = [cache.layers[i] for i in self.kept]
        marks = [(layer.stored, layer.seen) for layer in drafting]
        saved = ({k: copy.copy(v) for k, v in session.scratch.items()}, copy.copy(session.usage))
        device = self.model.device
        token, proposal = root, []
        self.decoder.layers = torch.nn.ModuleList([self.layers[i] for i in self.kept])
        try:
            with session.override(observer=lambda module, query: None):  # drafting evicts nothing, is not charged
                for _ in range(length):
                    out = self.model(input_ids=torch.tensor([[token]], device=device), cache=cache,
                                     position_ids=torch.tensor([[drafting[0].seen]], device=device), use_cache=True,
                                     logits_to_keep=1)
                    token = int(out.logits[0, -1].argmax())
                    proposal.append(token)
        finally:
            self.decoder.layers = self.layers
            session.scratch, session.usage = saved
            for layer, (stored, seen) in zip(drafting, marks, strict=True):
                layer.truncate(stored, seen)
        return DraftTree.chain(length), torch.tensor([root, *proposal])

