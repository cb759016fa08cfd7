from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from tokensieve.core.policy import register
from tokensieve.core.select import vote
from tokensieve.sparse.base import SelectPolicy, grouped


@register("tokenselect")
@dataclass
class TokenSelect(SelectPolicy):
    """TokenSelect (Wu et al., arXiv 2411.02886): per-head Q·K scores, a per-head soft vote within each KV group
    picks the critical tokens, and a selection cache reuses the last selection while consecutive queries stay
    similar (cosine >= `reuse_threshold`). `hits` / `lookups` give the cache's hit rate."""

    reuse_threshold: float = 0.9
    hits: int = field(default=0, compare=False)
    lookups: int = field(default=0, compare=False)

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        logits = torch.einsum("bhgd,bhnd->bhgn", q, keys) * module.scaling
        return vote(logits.flatten(1, 2), q.shape[2])

    def choose(self, session, module, query: Tensor, keys: Tensor, keep: int) -> Tensor:
        memo = self.scratch(session, module, "tokenselect", dict)
        q = grouped(query, keys.shape[1]).flatten(1)
        self.lookups += 1
        n = keys.shape[2]
        if memo and F.cosine_similarity(q, memo["query"], dim=-1).min() >= self.reuse_threshold \
                and memo["idx"].shape[-1] + (n - memo["n"]) <= keep + self.budget.window:
            self.hits += 1
            fresh = torch.arange(memo["n"], n, device=keys.device).expand(*memo["idx"].shape[:2], -1)
            return torch.cat([memo["idx"], fresh], -1)
        idx = super().choose(session, module, query, keys, keep)
        memo.update(query=q, idx=idx, n=n)
        return idx

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0
