"""Shared parts of the dynamic selectors: the decode-time attend step, block pooling, sparse attention."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from tokensieve.core.cache import _append
from tokensieve.core.policy import Policy


def grouped(query: Tensor, kv_heads: int) -> Tensor:
    """[batch, q_heads, 1, dim] -> [batch, kv_heads, group, dim] (one decode query per head)."""
    batch, q_heads, _, dim = query.shape
    return query.reshape(batch, kv_heads, q_heads // kv_heads, dim)


def gather_tokens(tensor: Tensor, idx: Tensor) -> Tensor:
    """[batch, heads, n, dim] gathered at idx [batch, heads, k] -> [batch, heads, k, dim].

    Token rows are copied whole with one `index_select` over the rows of the underlying buffer (the cache's
    growable buffer is a strided view): ~10x faster on CPU than `gather` with an index expanded per channel."""
    batch, heads, _, dim = tensor.shape
    s0, s1, s2, s3 = tensor.stride()
    if s3 != 1 or s2 != dim or s1 % dim or s0 % dim:
        return tensor.gather(2, idx.unsqueeze(-1).expand(-1, -1, -1, dim))
    starts = (torch.arange(batch, device=idx.device).view(-1, 1, 1) * (s0 // dim)
              + torch.arange(heads, device=idx.device).view(1, -1, 1) * (s1 // dim))
    rows_total = (batch - 1) * (s0 // dim) + (heads - 1) * (s1 // dim) + tensor.shape[2]
    rows = tensor.as_strided((rows_total, dim), (dim, 1))
    return rows.index_select(0, (starts + idx).flatten()).view(batch, heads, idx.shape[-1], dim)


def sparse_attend(query: Tensor, keys: Tensor, values: Tensor, scaling: float, bias: Tensor | None = None):
    """Exact softmax attention of one decode query per head over the given (already selected) keys.

    query [batch, q_heads, 1, dim]; keys/values [batch, kv_heads, k, dim]; bias: additive [batch, kv_heads, 1, k].
    Returns the attention interface's output layout [batch, 1, q_heads, dim].
    """
    batch, q_heads, _, dim = query.shape
    q = grouped(query, keys.shape[1])
    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=bias, scale=scaling)
    return out.reshape(batch, q_heads, 1, values.shape[-1]).transpose(1, 2).contiguous()


def top_tokens(scores: Tensor, keep: int, protect: Tensor) -> Tensor:
    """Indices of the `keep` best tokens along the last dim, protected ones first, in no particular order:
    core's `topk_keep` without its final sort, which costs more than the top-k itself on CPU at every step."""
    if keep >= scores.shape[-1]:
        return torch.arange(scores.shape[-1], device=scores.device).expand(scores.shape).contiguous()
    ranked = scores.float().nan_to_num(nan=float("-inf")).masked_fill(protect, float("inf"))
    return ranked.topk(keep, dim=-1, sorted=False).indices


def protected_indices(n: int, sinks: int, window: int, device) -> Tensor:
    arange = torch.arange(n, device=device)
    return (arange < sinks) | (arange >= n - window)


@dataclass
class BlockPool:
    """Per complete block of `size` tokens, pooled statistics of keys and values (mean by default; "min"/"max"
    per channel for Quest-style score bounds), extended incrementally as the cache grows."""

    size: int
    reduce: str = "mean"
    keys: Tensor | None = None  # [batch, kv_heads, blocks, dim]
    values: Tensor | None = None

    def _pool(self, x: Tensor, n_blocks: int) -> Tensor:
        blocks = x.unflatten(2, (n_blocks, self.size))
        return getattr(blocks, self.reduce)(3) if self.reduce == "mean" else getattr(blocks, "a" + self.reduce)(3)

    def update(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        done = 0 if self.keys is None else self.keys.shape[2]
        complete = keys.shape[2] // self.size
        if complete > done:
            lo, hi = done * self.size, complete * self.size
            new_k = self._pool(keys[:, :, lo:hi], complete - done)
            new_v = self._pool(values[:, :, lo:hi], complete - done)
            self.keys = new_k if self.keys is None else torch.cat([self.keys, new_k], 2)
            self.values = new_v if self.values is None else torch.cat([self.values, new_v], 2)
        return self.keys, self.values


@dataclass
class KeyChannels:
    """A contiguous copy of a fixed set of channels per KV head (`dims` [kv_heads, c]) of every cached key,
    extended as the cache grows: scoring with it reads c/dim of the key bytes instead of all of them."""

    dims: Tensor
    keys: Tensor | None = None  # [batch, kv_heads, n, c]

    def update(self, keys: Tensor) -> Tensor:
        done = 0 if self.keys is None else self.keys.shape[2]
        if keys.shape[2] > done:
            fresh = keys[:, :, done:]
            index = self.dims[None, :, None, :].expand(fresh.shape[0], -1, fresh.shape[2], -1)
            self.keys = _append(self.keys, fresh.gather(-1, index))
        return self.keys


@dataclass
class SelectPolicy(Policy):
    """Base of the dynamic selectors. Prefill is dense; each decode step scores the cached tokens of every
    full-attention layer, keeps the `budget` best per KV head (sinks and recent window always) and attends
    exactly over them. Subclasses implement `scores()` or override `choose()`.

    sparse_prefill: prompt queries attend block-sparsely too (see sparse/prefill.py), so long prompts get faster.
    """

    sparse_prefill: bool = False
    prefill_block: int = 128

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        """[batch, kv_heads, n] importance of every cached token for the grouped query q [b, kv, group, dim]."""
        raise NotImplementedError

    def choose(self, session, module, query: Tensor, keys: Tensor, keep: int) -> Tensor:
        """Indices [batch, kv_heads, keep] of the tokens to attend to, in no particular order."""
        q = grouped(query, keys.shape[1])
        guard = protected_indices(keys.shape[2], self.budget.sinks, self.budget.window, keys.device)
        return top_tokens(self.scores(session, module, q, keys), keep, guard.expand(keys.shape[:3]))

    def dense(self, query: Tensor, keys: Tensor, mask, keep: int, module) -> bool:
        return (query.shape[2] > 1 or keep >= keys.shape[2] or self.budget.is_full
                or getattr(module, "sliding_window", None) is not None)

    def attend(self, session, module, query, key, value, attention_mask, **kwargs):
        keep = self.budget.tokens(key.shape[2])
        if self.sparse_prefill and query.shape[2] > 1 and not self.budget.is_full \
                and getattr(module, "sliding_window", None) is None:
            from tokensieve.sparse.prefill import sparse_prefill  # prefill.py builds on this module

            ratio = keep / key.shape[2]
            return sparse_prefill(query, key, value, module.scaling, ratio, self.prefill_block), None
        if self.dense(query, key, attention_mask, keep, module):
            return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
        idx = self.choose(session, module, query, key, keep)
        return sparse_attend(query, gather_tokens(key, idx), gather_tokens(value, idx), module.scaling), None

    @staticmethod
    def scratch(session, module, name: str, make):
        key = (module.layer_idx, name)
        if key not in session.scratch:
            session.scratch[key] = make()
        return session.scratch[key]


def exact_scores(q: Tensor, keys: Tensor) -> Tensor:
    """Max over each KV head's query group of q·k: [batch, kv_heads, n]."""
    return torch.einsum("bhgd,bhnd->bhgn", q, keys).amax(2)


def iou(a: Tensor, b: Tensor) -> float:
    """Mean intersection-over-union of two index sets per (batch, head): [.., k] each."""
    total, count = 0.0, 0
    for x, y in zip(a.flatten(0, -2), b.flatten(0, -2), strict=True):
        sx, sy = set(x.tolist()), set(y.tolist())
        total += len(sx & sy) / max(len(sx | sy), 1)
        count += 1
    return total / max(count, 1)


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)
