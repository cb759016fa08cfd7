"""Sparse prefill: the block selection of the dynamic selectors applied to prompt queries, block by block.

Each block of `block` prompt queries attends exactly to: the first key block (attention sinks), its own block
(causally) and the previous one, and the best earlier key blocks by pooled score (the best score any query of
the block, and of the KV group, gives the block's mean key), as many as the budget allows. Keys stay in the cache;
only the attention work shrinks, so a long prompt is read in roughly budget × the dense attention cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tokensieve.sparse.base import BlockPool, gather_tokens


def sparse_prefill(query: Tensor, key: Tensor, value: Tensor, scaling: float, keep_ratio: float,
                   block: int = 128, dense_tail: bool = True) -> Tensor:
    """query [b, hq, q, d] for the last q positions of key/value [b, hkv, n, d] -> output [b, q, hq, d]."""
    batch, q_heads, q_len, dim = query.shape
    kv_heads, n = key.shape[1], key.shape[2]
    group = q_heads // kv_heads
    offset = n - q_len  # keys before the first query (an earlier chunk)
    means, _ = BlockPool(block).update(key, key)  # [b, hkv, blocks, d] over complete key blocks
    out = query.new_empty(batch, q_len, q_heads, value.shape[-1])
    for lo in range(0, q_len, block):
        hi = min(q_len, lo + block)
        q_blk = query[:, :, lo:hi]
        start_local = max(0, (offset + lo) // block * block - block)  # previous block + own block
        far_blocks = start_local // block  # complete key blocks entirely before the local span
        budget_blocks = int(keep_ratio * (offset + hi) / block)
        if far_blocks <= 1 or budget_blocks >= far_blocks or (dense_tail and hi == q_len):
            idx = None  # dense for this query block (and for the prompt's last block: the question reads all)
        else:
            qg = q_blk.reshape(batch, kv_heads, group, hi - lo, dim)
            # a key block is as good as the best score any query of this block gives its mean key
            scores = torch.einsum("bhgqd,bhkd->bhgqk", qg, means[:, :, 1:far_blocks]).amax(dim=(2, 3))
            best = scores.topk(max(budget_blocks - 1, 0), -1).indices + 1
            chosen = torch.cat([torch.zeros_like(best[..., :1]), best.sort(-1).values], -1)  # sinks block first
            idx = (chosen.unsqueeze(-1) * block + torch.arange(block, device=key.device)).flatten(-2)
        local = torch.arange(start_local, offset + hi, device=key.device)
        out[:, lo:hi] = _attend_block(q_blk, key, value, idx, local, offset + lo, scaling, group)
    return out


def _attend_block(q: Tensor, key: Tensor, value: Tensor, far: Tensor | None, local: Tensor, q_start: int,
                  scaling: float, group: int) -> Tensor:
    batch, kv_heads = key.shape[:2]
    if far is None:
        keys, values = key[:, :, : local[-1] + 1], value[:, :, : local[-1] + 1]
        positions = torch.arange(keys.shape[2], device=key.device)
    else:
        both = torch.cat([far, local.expand(batch, kv_heads, -1)], -1)
        keys, values = gather_tokens(key, both), gather_tokens(value, both)
        # far blocks all precede the local span: visible to every query; the local span is causal
        positions = torch.cat([torch.full((far.shape[-1],), -1, device=key.device), local])
    q_pos = torch.arange(q_start, q_start + q.shape[2], device=key.device)
    mask = positions[None, :] <= q_pos[:, None]
    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=scaling, enable_gqa=group > 1)
    return out.transpose(1, 2)
