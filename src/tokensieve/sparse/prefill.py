"""Sparse prefill: the block selection of the dynamic selectors applied to prompt queries, block by block.

Each block of `block` prompt queries attends exactly to: the first key block (attention sinks), its own block
(causally), the previous block when the budget allows, and the best earlier key blocks by pooled score (the
best score any query of the block, and of the KV group, gives the block's mean key). Every one of those keys is
charged to the budget, `budget.tokens(visible keys)` per query block. Keys stay in the cache; only the
attention work shrinks. The prompt's last block (the question) reads densely when `dense_tail`: that, and any
block whose sinks + own block alone exceed its budget, is counted as a dense fallback.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tokensieve.core.budget import Budget
from tokensieve.core.tensors import gather_rows
from tokensieve.errors import TokensieveError
from tokensieve.sparse.pools import BlockPool


def sparse_prefill(session, query: Tensor, key: Tensor, value: Tensor, scaling: float, budget: Budget,
                   block: int = 128, dense_tail: bool = True) -> Tensor:
    """query [b, hq, q, d] for the last q positions of key/value [b, hkv, n, d] -> output [b, q, hq, d]."""
    if session.pads is not None:
        raise TokensieveError("sparse_prefill does not support padded batches; run the prompts one at a time")
    batch, q_heads, q_len, dim = query.shape
    kv_heads, n = key.shape[1], key.shape[2]
    group = q_heads // kv_heads
    offset = n - q_len  # keys before the first query (an earlier chunk)
    means, _ = BlockPool(block).update(key)  # [b, hkv, blocks, d] over complete key blocks
    out = query.new_empty(batch, q_len, q_heads, value.shape[-1])
    for lo in range(0, q_len, block):
        hi = min(q_len, lo + block)
        visible = offset + hi
        own = (offset + lo) // block * block  # first key of the query block's own key block
        keep = budget.tokens(visible)
        start_local = own - block if own >= 2 * block and visible - own + 2 * block <= keep else own
        local_len = visible - start_local
        far_blocks = start_local // block  # complete key blocks entirely before the local span
        budget_blocks = (keep - local_len) // block  # blocks affordable besides the local span (sinks included)
        if visible <= keep:
            idx = None  # the whole causal span fits the budget: dense is exact and within it
        elif (dense_tail and hi == q_len) or budget_blocks < 1 or far_blocks < 1:
            idx = None
            session.usage.dense(decode=False)
        else:
            qg = query[:, :, lo:hi].reshape(batch, kv_heads, group, hi - lo, dim)
            take = min(budget_blocks, far_blocks) - 1  # the sinks block is always one of them
            if take > 0:
                # a key block is as good as the best score any query of this block gives its mean key
                scores = torch.einsum("bhgqd,bhkd->bhgqk", qg, means[:, :, 1:far_blocks]).amax(dim=(2, 3))
                best = scores.topk(take, -1).indices + 1
                chosen = torch.cat([torch.zeros_like(best[..., :1]), best.sort(-1).values], -1)
            else:
                chosen = torch.zeros(batch, kv_heads, 1, dtype=torch.long, device=key.device)
            idx = (chosen.unsqueeze(-1) * block + torch.arange(block, device=key.device)).flatten(-2)
        local = torch.arange(start_local, visible, device=key.device)
        out[:, lo:hi] = _attend_block(query[:, :, lo:hi], key, value, idx, local, offset + lo, scaling, group)
    return out


def _attend_block(q: Tensor, key: Tensor, value: Tensor, far: Tensor | None, local: Tensor, q_start: int,
                  scaling: float, group: int) -> Tensor:
    batch, kv_heads = key.shape[:2]
    if far is None:
        keys, values = key[:, :, : local[-1] + 1], value[:, :, : local[-1] + 1]
        positions = torch.arange(keys.shape[2], device=key.device)
    else:
        both = torch.cat([far, local.expand(batch, kv_heads, -1)], -1)
        keys, values = gather_rows(key, both), gather_rows(value, both)
        # far blocks all precede the local span: visible to every query; the local span is causal
        positions = torch.cat([torch.full((far.shape[-1],), -1, device=key.device), local])
    q_pos = torch.arange(q_start, q_start + q.shape[2], device=key.device)
    mask = positions[None, :] <= q_pos[:, None]
    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=scaling, enable_gqa=group > 1)
    return out.transpose(1, 2)
