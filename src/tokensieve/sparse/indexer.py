from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.policy import register
from tokensieve.sparse.base import SelectPolicy


@register("indexer_topk")
@dataclass
class IndexerTopK(SelectPolicy):
    """Indexer top-k (DeepSeek-V3.2 sparse attention, DSA, style) with a training-free indexer: Q·K on
    the `dims` channels where the query is largest (SparQ, arXiv 2312.04985), then exact attention on the
    top-k tokens. The indexer reads dims/dim of every key instead of all of it."""

    dims: int = 16

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        dims = min(self.dims, q.shape[-1])
        channels = q.abs().sum(2).topk(dims, dim=-1).indices  # [batch, kv_heads, dims]
        q_part = q.gather(-1, channels.unsqueeze(2).expand(-1, -1, q.shape[2], -1))
        k_part = keys.gather(-1, channels.unsqueeze(2).expand(-1, -1, keys.shape[2], -1))
        return torch.einsum("bhgd,bhnd->bhgn", q_part, k_part).amax(2)
