from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.tensors import gather_rows
from tokensieve.sparse.base import BlockPool, Selection, SelectPolicy, ceil_div, grouped, pick


@dataclass
class HISA(SelectPolicy):
    """HISA, hierarchical indexed sparse attention (a two-level refinement of DSA-style indexers): pooled block
    representatives filter blocks first (`oversample` x the budget in blocks survive), then exact token-level
    top-k runs only inside the surviving blocks. Blocks are ranked by the mean key, or with
    `representative="bound"` by an upper bound of q·k from per-channel key min/max (Quest, arXiv 2406.10774);
    pools are extended as the cache grows."""

    name = "hisa"

    block: int = 16
    oversample: float = 4.0
    representative: str = "mean"  # measured on SmolLM2 at 2k: mean pooling ranks blocks better than the bound

    def candidates(self, session, module, q: Tensor, keys: Tensor, keep: int) -> Tensor:
        """Token indices [batch, kv_heads, m] inside the best blocks, plus the unfinished last block. The blocks
        holding a sequence's sinks and the recent window always survive, so every protected token is a
        candidate; blocks of padding never do. How many blocks survive is known without reading the scores."""
        block_scores = self.block_scores(session, module, q, keys)
        n, blocks = keys.shape[2], block_scores.shape[-1]
        starts = torch.arange(blocks, device=keys.device) * self.block
        pads = session.pads.view(-1, 1) if session.pads is not None else torch.zeros(1, 1, device=keys.device)
        sinks = (starts < pads + self.budget.sinks) & (starts + self.block > pads)
        window = starts + self.block > n - self.budget.window
        padding = starts + self.block <= pads
        ranked = block_scores.masked_fill(padding.unsqueeze(1), float("-inf"))
        ranked = ranked.masked_fill((sinks | window).unsqueeze(1), float("inf"))
        forced = ceil_div(self.budget.sinks, self.block) + (session.pads is not None) \
            + blocks - max(0, n - self.budget.window) // self.block
        take = min(blocks, max(ceil_div(int(keep * self.oversample), self.block), forced))
        best = ranked.topk(take, dim=-1, sorted=False).indices
        tokens = (best.unsqueeze(-1) * self.block + torch.arange(self.block, device=keys.device)).flatten(-2)
        tail = torch.arange(blocks * self.block, n, device=keys.device).expand(*tokens.shape[:2], -1)
        return torch.cat([tokens, tail], -1)

    def state_bytes(self, rows: int, kv_heads: int, head_dim: int, element: int,
                    kv_bits: int | None = None) -> int:
        """The block pools: a mean key per complete block (or a minimum and a maximum key)."""
        pools = 1 if self.representative == "mean" else 2
        return rows // self.block * pools * kv_heads * head_dim * element

    def block_scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        """[batch, kv_heads, blocks]: the best score any query of the group could give a token of the block."""
        if self.representative == "mean":
            means, _ = self.scratch(session, module, "mean", lambda: BlockPool(self.block)).update(keys)
            return torch.einsum("bhgd,bhnd->bhgn", q, means).amax(2)
        low, _ = self.scratch(session, module, "min", lambda: BlockPool(self.block, "min")).update(keys)
        high, _ = self.scratch(session, module, "max", lambda: BlockPool(self.block, "max")).update(keys)
        qe = q.unsqueeze(3)  # [b, h, g, 1, d]
        bound = torch.maximum(qe * high.unsqueeze(2), qe * low.unsqueeze(2)).sum(-1)
        return bound.amax(2)

    def choose(self, session, module, query: Tensor, keys: Tensor, keeps: list[int]) -> Selection:
        q = grouped(query, keys.shape[1])
        cand = self.candidates(session, module, q, keys, max(keeps))
        scores = torch.einsum("bhgd,bhnd->bhgn", q, gather_rows(keys, cand)).amax(2)
        valid = None if session.pads is None else cand >= session.pads.view(-1, 1, 1)
        selection = pick(scores, [min(k, cand.shape[-1]) for k in keeps], self.guard(session, keys, keeps, cand),
                         valid)
        selection.indices = cand.gather(-1, selection.indices)
        return selection
