from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.encoder.base import EncoderMethod, Seen, bipartite, cosine, rank_of, ranked, removable
from tokensieve.encoder.tokens import Tokens


def pagerank(graph: Tensor, valid: Tensor, steps: int) -> Tensor:
    """Weighted PageRank on the attention graph [batch, q, k]: a key is important when important queries attend
    to it (s <- A^T s), started uniform over the real rows."""
    s = valid.float() / valid.sum(1, keepdim=True).clamp(min=1)
    graph = graph * valid[:, :, None] * valid[:, None, :]
    for _ in range(steps):
        s = torch.bmm(s.unsqueeze(1), graph).squeeze(1)
        s = s / s.sum(1, keepdim=True).clamp(min=1e-12)
    return s


@dataclass
class ZeroTPrune(EncoderMethod):
    """Zero-TPrune (Wang et al., "Zero-TPrune: Zero-Shot Token Pruning through Leveraging of the Attention Graph
    in Pre-Trained Transformers", CVPR 2024, arXiv 2305.17328). I-stage: importance is the weighted PageRank of
    each row on the layer's attention graph; the least important half of the removal is pruned on that score.
    S-stage: the remaining rows are split alternately by importance into A and B, and the A rows most similar
    to a B row (cosine of keys) are pruned, so redundant tokens go even when attended. Our reading: the paper's
    per-stage ratios are set here to half and half."""

    name = "zero_tprune"
    paper = "arXiv 2305.17328"
    needs = frozenset({"keys", "graph"})
    steps: int = 10

    def reduce(self, tokens: Tokens, seen: Seen, remove: Tensor, layer: int, layers: int) -> Tokens:
        importance = pagerank(seen.graph, tokens.valid, self.steps)
        by_importance = remove // 2
        similar = remove - by_importance
        gone = ranked(-importance, by_importance, removable(tokens))
        free = removable(tokens) & ~gone
        rank = rank_of(importance.masked_fill(~free, float("inf")), descending=False)
        a, b = free & (rank % 2 == 0), free & (rank % 2 == 1)
        src, _ = bipartite(cosine(seen.keys), a, b, torch.minimum(similar, a.sum(1)))
        return tokens.keep(~(gone | src))
