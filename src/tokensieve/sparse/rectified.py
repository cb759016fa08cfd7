from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.tensors import gather_rows
from tokensieve.sparse.base import BlockPool, Selection, sparse_attend
from tokensieve.sparse.hisa import HISA


@dataclass
class Rectified(HISA):
    """Rectified sparse attention (Rectified SpaAttn idea): attend exactly over the selected tokens, then correct
    the bias of dropping the rest by adding each skipped block as one pooled entry — its mean key and value,
    weighted by its token count (an additive log-count bias) — so the softmax denominator and the output keep
    an estimate of the skipped mass instead of renormalising it away. The pooled entries are attended, so
    they are charged: each block entry takes one token of the budget from the exact selection."""

    name = "rectified"

    def state_bytes(self, rows: int, kv_heads: int, head_dim: int, element: int,
                    kv_bits: int | None = None) -> int:
        """HISA's block pool, and the mean key and value of every complete block (the pooled entries)."""
        return super().state_bytes(rows, kv_heads, head_dim, element, kv_bits) + rows // self.block * 2 * kv_heads \
            * head_dim * element

    def extra_entries(self, n: int) -> int:
        return n // self.block  # one pooled entry per complete block, charged to the budget

    def attend_selected(self, session, module, query, key, value, selection: Selection) -> Tensor:
        idx = selection.indices
        mean_k, mean_v = self.scratch(session, module, "vpool", lambda: BlockPool(self.block)).update(key, value)
        bias = _skipped_block_bias(idx, mean_k.shape[2], self.block, key.dtype)
        if selection.hidden is not None:
            bias[..., : idx.shape[-1]].masked_fill_(selection.hidden, float("-inf"))
        if session.pads is not None:  # a block that is all padding stands for nothing
            whole_pad = (torch.arange(mean_k.shape[2], device=key.device) + 1) * self.block <= session.pads[:, None]
            bias[..., idx.shape[-1]:].masked_fill_(whole_pad[:, None, :], float("-inf"))
        keys = torch.cat([gather_rows(key, idx), mean_k], 2)
        values = torch.cat([gather_rows(value, idx), mean_v], 2)
        return sparse_attend(query, keys, values, module.scaling, bias.unsqueeze(2))


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


