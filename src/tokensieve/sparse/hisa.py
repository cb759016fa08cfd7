from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.policy import register
from tokensieve.sparse.base import (
    BlockPool,
    SelectPolicy,
    ceil_div,
    gather_tokens,
    grouped,
    protected_indices,
    top_tokens,
)


@register("hisa")
@dataclass
class HISA(SelectPolicy):
    """HISA, hierarchical indexed sparse attention (a two-level refinement of DSA-style indexers): pooled block
    representatives filter blocks first (`oversample` x the budget in blocks survive), then exact token-level
    top-k runs only inside the surviving blocks. Blocks are ranked by the mean key, or with
    `representative="bound"` by an upper bound of q·k from per-channel key min/max (Quest, arXiv 2406.10774);
    pools are extended as the cache grows."""

    block: int = 16
    oversample: float = 4.0
    representative: str = "mean"  # measured on SmolLM2 at 2k: mean pooling ranks blocks better than the bound

    def candidates(self, session, module, q: Tensor, keys: Tensor, keep: int) -> Tensor:
        """Token indices [batch, kv_heads, m] inside the best blocks, plus the unfinished last block. The blocks
        holding the sinks and the recent window always survive, so every protected token is a candidate."""
        block_scores = self.block_scores(session, module, q, keys)
        n, blocks = keys.shape[2], block_scores.shape[-1]
        forced = torch.zeros(blocks, dtype=torch.bool, device=keys.device)
        forced[: ceil_div(self.budget.sinks, self.block)] = True
        forced[max(0, n - self.budget.window) // self.block :] = True
        block_scores = block_scores.masked_fill(forced, float("inf"))
        take = min(blocks, max(ceil_div(int(keep * self.oversample), self.block), int(forced.sum())))
        best = block_scores.topk(take, dim=-1, sorted=False).indices
        tokens = (best.unsqueeze(-1) * self.block + torch.arange(self.block, device=keys.device)).flatten(-2)
        tail = torch.arange(blocks * self.block, n, device=keys.device).expand(*tokens.shape[:2], -1)
        return torch.cat([tokens, tail], -1)

    def block_scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        """[batch, kv_heads, blocks]: the best score any query of the group could give a token of the block."""
        if self.representative == "mean":
            means, _ = self.scratch(session, module, "mean", lambda: BlockPool(self.block)).update(keys, keys)
            return torch.einsum("bhgd,bhnd->bhgn", q, means).amax(2)
        low, _ = self.scratch(session, module, "min", lambda: BlockPool(self.block, "min")).update(keys, keys)
        high, _ = self.scratch(session, module, "max", lambda: BlockPool(self.block, "max")).update(keys, keys)
        qe = q.unsqueeze(3)  # [b, h, g, 1, d]
        bound = torch.maximum(qe * high.unsqueeze(2), qe * low.unsqueeze(2)).sum(-1)
        return bound.amax(2)

    def choose(self, session, module, query: Tensor, keys: Tensor, keep: int) -> Tensor:
        q = grouped(query, keys.shape[1])
        cand = self.candidates(session, module, q, keys, keep)
        scores = torch.einsum("bhgd,bhnd->bhgn", q, gather_tokens(keys, cand)).amax(2)
        guard = protected_indices(keys.shape[2], self.budget.sinks, self.budget.window, keys.device)[cand]
        return cand.gather(-1, top_tokens(scores, min(keep, cand.shape[-1]), guard))
