from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.sparse.base import SelectPolicy


@dataclass
class IndexerTopK(SelectPolicy):
    """Indexer top-k (DeepSeek-V3.2 sparse attention, DSA, style) with a training-free indexer: Q·K on
    the `dims` channels where the query is largest (SparQ, arXiv 2312.04985), then exact attention on the
    top-k tokens. The channels follow the query, so with keys stored row by row the indexer still reads whole
    keys on CPU; its saving is arithmetic, not memory (FASA's fixed channels allow a compact copy instead)."""

    name = "indexer_topk"

    dims: int = 16

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        dims = min(self.dims, q.shape[-1])
        channels = q.abs().sum(2).topk(dims, dim=-1).indices  # [batch, kv_heads, dims]
        # the query with its other channels zeroed: same scores as gathering the channels, and on CPU reading
        # whole key rows costs no more than reading a few strided channels of them
        q_part = torch.zeros_like(q).scatter(-1, channels.unsqueeze(2).expand(-1, -1, q.shape[2], -1),
                                             q.gather(-1, channels.unsqueeze(2).expand(-1, -1, q.shape[2], -1)))
        return torch.einsum("bhgd,bhnd->bhgn", q_part, keys).amax(2)
