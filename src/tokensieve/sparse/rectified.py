from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.policy import register
from tokensieve.sparse.base import BlockPool, gather_tokens, sparse_attend
from tokensieve.sparse.hisa import HISA


@register("rectified")
@dataclass
class Rectified(HISA):
    """Rectified sparse attention (Rectified SpaAttn idea): attend exactly over the selected tokens, then correct
    the bias of dropping the rest by adding each skipped block as one pooled entry — its mean key and value,
    weighted by its token count (an additive log-count bias) — so the softmax denominator and the output keep
    an estimate of the skipped mass instead of renormalising it away."""

    def attend(self, session, module, query, key, value, attention_mask, **kwargs):
        keep = self.budget.tokens(key.shape[2])
        if self.dense(query, key, attention_mask, keep, module):
            return super().attend(session, module, query, key, value, attention_mask, **kwargs)
        idx = self.choose(session, module, query, key, keep)
        pool = self.scratch(session, module, "vpool", lambda: BlockPool(self.block))
        mean_k, mean_v = pool.update(key, value)
        bias = _skipped_block_bias(idx, mean_k.shape[2], self.block, key.dtype)
        keys = torch.cat([gather_tokens(key, idx), mean_k], 2)
        values = torch.cat([gather_tokens(value, idx), mean_v], 2)
        return sparse_attend(query, keys, values, module.scaling, bias.unsqueeze(2)), None


def _skipped_block_bias(idx: Tensor, blocks: int, size: int, dtype) -> Tensor:
    """Additive bias [batch, kv_heads, k + blocks]: 0 for selected tokens, log(skipped count) for a block entry,
    -inf for a block whose tokens were all selected. Partly selected blocks stand for their unselected tokens."""
    batch, heads, k = idx.shape
    in_block = idx // size
    chosen = torch.zeros(batch, heads, blocks + 1, device=idx.device, dtype=torch.float32)
    chosen.scatter_add_(-1, in_block.clamp(max=blocks), torch.ones_like(idx, dtype=torch.float32))
    skipped = (size - chosen[..., :blocks]).clamp(min=0)
    block_bias = torch.where(skipped > 0, skipped.log(), torch.full_like(skipped, float("-inf")))
    return torch.cat([torch.zeros(batch, heads, k, device=idx.device), block_bias], -1).to(dtype)


