from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.encoder.base import EncoderMethod, Seen, bipartite, cosine, removable
from tokensieve.encoder.tokens import Tokens


@dataclass
class ToMe(EncoderMethod):
    """ToMe (Bolya et al., "Token Merging: Your ViT but Faster", ICLR 2023, arXiv 2210.09461): split the rows
    into alternating sets A and B, match every A row to its most similar B row by the cosine of their keys
    (averaged over heads), merge the r best-matched pairs (size-weighted average) and let merged rows attend
    with proportional attention (log-size bias). At most half the rows can go in one layer."""

    name = "tome"
    paper = "arXiv 2210.09461"
    needs = frozenset({"keys"})
    merges = True

    def reduce(self, tokens: Tokens, seen: Seen, remove: Tensor, layer: int, layers: int) -> Tokens:
        free = removable(tokens)
        order = torch.cumsum(free.long(), 1)  # alternate among the removable rows only
        a, b = free & (order % 2 == 1), free & (order % 2 == 0)  # the class token is neither
        src, dst = bipartite(cosine(seen.keys), a, b, torch.minimum(remove, a.sum(1)))
        return tokens.merge(src, dst)
