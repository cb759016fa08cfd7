from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.encoder.base import EncoderMethod, Seen, bipartite, cosine, rank_of, ranked, removable
from tokensieve.encoder.tokens import Tokens


@dataclass
class PiToMe(EncoderMethod):
    """PiToMe (Tran et al., "Accelerating Transformers with Spectrum-Preserving Token Merging", NeurIPS 2024,
    arXiv 2405.16148): each row's energy is its mean thresholded similarity to the others (f(x) = x above a
    margin, alpha (e^(x - margin) - 1) below), so redundant rows have high energy and isolated ones low. The 2r
    highest-energy rows are split alternately into A and B and matched as in ToMe; the isolated rows are never
    merged. The margin falls with depth (0.9 at the first layer towards 0), as in the paper."""

    name = "pitome"
    paper = "arXiv 2405.16148"
    needs = frozenset({"keys"})
    merges = True
    alpha: float = 1.0

    def reduce(self, tokens: Tokens, seen: Seen, remove: Tensor, layer: int, layers: int) -> Tokens:
        similarity = cosine(seen.keys)
        margin = 0.9 - 0.9 * layer / layers
        shaped = torch.where(similarity >= margin, similarity, self.alpha * (torch.exp(similarity - margin) - 1))
        valid = tokens.valid
        shaped = shaped.masked_fill(~valid[:, None, :], 0.0)
        energy = shaped.sum(-1) / valid.sum(1, keepdim=True).clamp(min=1)
        free = removable(tokens)
        count = torch.minimum(remove, free.sum(1) // 2)
        candidates = ranked(energy, 2 * count, free)
        # alternate A/B in energy order among the candidates
        rank = rank_of(energy.masked_fill(~candidates, float("-inf")))
        a, b = candidates & (rank % 2 == 0), candidates & (rank % 2 == 1)
        src, dst = bipartite(similarity, a, b, count)
        return tokens.merge(src, dst)
