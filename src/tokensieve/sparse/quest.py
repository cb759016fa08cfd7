from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.errors import TokensieveError
from tokensieve.sparse.base import BlockPool, SelectPolicy


@dataclass
class Quest(SelectPolicy):
    """Quest (Tang et al., "Quest: Query-Aware Sparsity for Efficient Long-Context LLM Inference", arXiv 2406.10774):
    the cache is cut into pages of `page` tokens, each summarised by the per-channel minimum and maximum of its keys
    (extended as pages fill). A decode query ranks the pages by the upper bound those give of q·k (per channel the
    larger of q·min and q·max, summed; the best over the KV head's query group) and attends exactly over the best
    pages' tokens. Every token of a page shares its page's rank, so the budget is filled page by page; the sinks,
    the recent window and the unfinished last page are always attended and charged to it."""

    name = "quest"

    page: int = 16

    def __post_init__(self) -> None:
        if isinstance(self.page, bool) or not isinstance(self.page, int) or self.page < 1:
            raise TokensieveError(f"policy 'quest': option page={self.page!r} must be a whole number >= 1")

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        low, _ = self.scratch(session, module, "page_min", lambda: BlockPool(self.page, "min")).update(keys, keys)
        high, _ = self.scratch(session, module, "page_max", lambda: BlockPool(self.page, "max")).update(keys, keys)
        n = keys.shape[2]
        if low is None:  # not one page filled yet: every token is in the last page
            return keys.new_full((keys.shape[0], keys.shape[1], n), float("inf"))
        qe = q.unsqueeze(3)  # [batch, kv_heads, group, 1, dim] against pages [batch, kv_heads, 1, pages, dim]
        bound = torch.maximum(qe * high.unsqueeze(2), qe * low.unsqueeze(2)).sum(-1).amax(2)
        per_token = bound.repeat_interleave(self.page, -1)
        tail = per_token.new_full((*per_token.shape[:2], n - per_token.shape[-1]), float("inf"))
        return torch.cat([per_token, tail], -1)
