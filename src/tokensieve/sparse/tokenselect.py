from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tokensieve.core.select import vote
from tokensieve.sparse.base import Selection, SelectPolicy, grouped


@dataclass
class TokenSelect(SelectPolicy):
    """TokenSelect (Wu et al., arXiv 2411.02886): per-head Q·K scores, a per-head soft vote within each KV group
    picks the critical tokens, and a selection cache reuses the last selection while consecutive queries stay
    similar (cosine >= `reuse_threshold`).

    Reuse is charged: a fresh selection takes `budget - reuse_room` tokens, and a reused one adds the tokens
    decoded since, so it is taken only while the total stays within the budget. The session keeps the cache's
    hits and lookups (`TokenSelect.hit_rate(session)`)."""

    name = "tokenselect"

    reuse_threshold: float = 0.9
    reuse_room: int = 8

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        logits = torch.einsum("bhgd,bhnd->bhgn", q, keys) * module.scaling
        valid = self.valid(session, keys)
        if valid is not None:  # padding takes no share of the vote
            logits = logits.masked_fill(~valid.unsqueeze(2), float("-inf"))
        return vote(logits.flatten(1, 2), q.shape[2])

    def choose(self, session, module, query: Tensor, keys: Tensor, keeps: list[int]) -> Selection:
        memo = self.scratch(session, module, "tokenselect", dict)
        counts = session.scratch.setdefault("tokenselect", {"hits": 0, "lookups": 0})
        q = grouped(query, keys.shape[1]).flatten(1)
        counts["lookups"] += 1
        n = keys.shape[2]
        if memo and memo["selection"].hidden is None and memo["width"] + n - memo["n"] <= min(keeps) \
                and F.cosine_similarity(q, memo["query"], dim=-1).min() >= self.reuse_threshold:
            counts["hits"] += 1
            idx = memo["selection"].indices
            fresh = torch.arange(memo["n"], n, device=keys.device).expand(*idx.shape[:2], -1)
            return Selection(torch.cat([idx, fresh], -1), [memo["width"] + n - memo["n"]] * len(keeps))
        room = [max(sum(self.budget.protect(k)), k - self.reuse_room) for k in keeps]
        selection = super().choose(session, module, query, keys, room)
        memo.update(query=q, selection=selection, n=n, width=selection.indices.shape[-1])
        return selection

    @staticmethod
    def hit_rate(session) -> float:
        counts = session.scratch.get("tokenselect", {"hits": 0, "lookups": 0})
        return counts["hits"] / counts["lookups"] if counts["lookups"] else 0.0
