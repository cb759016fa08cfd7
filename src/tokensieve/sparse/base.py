"""Shared parts of the dynamic selectors: the decode-time attend step, block pooling, sparse attention.

Budgets are per sequence and everything is charged: sinks, recent window, reused selections and any extra
entries a selector attends (rectified's pooled blocks) count against `budget.tokens(n)`. A forward that reads
every key although the budget is smaller (a prompt forward without sparse prefill, a sliding-window layer) is
counted in `session.usage` as a dense fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tokensieve.core.policy import DynamicPolicy
from tokensieve.core.select import protected, topk_keep
from tokensieve.core.tensors import gather_rows
from tokensieve.sparse.pools import BlockPool, KeyChannels  # noqa: F401  (re-exported for the selectors)
from tokensieve.sparse.prefill import sparse_prefill


def grouped(query: Tensor, kv_heads: int) -> Tensor:
    """[batch, q_heads, 1, dim] -> [batch, kv_heads, group, dim] (one decode query per head)."""
    batch, q_heads, _, dim = query.shape
    return query.reshape(batch, kv_heads, q_heads // kv_heads, dim)


gather_tokens = gather_rows  # the selectors' name for it


def sparse_attend(query: Tensor, keys: Tensor, values: Tensor, scaling: float, bias: Tensor | None = None):
    """Exact softmax attention of one decode query per head over the given (already selected) keys.

    query [batch, q_heads, 1, dim]; keys/values [batch, kv_heads, k, dim]; bias: additive [batch, kv_heads, 1, k].
    Returns the attention interface's output layout [batch, 1, q_heads, dim].
    """
    batch, q_heads, _, dim = query.shape
    q = grouped(query, keys.shape[1])
    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=bias, scale=scaling)
    return out.reshape(batch, q_heads, 1, values.shape[-1]).transpose(1, 2).contiguous()


@dataclass
class Selection:
    """What one decode step of one layer attends to: `indices` [batch, kv_heads, width] into the cache, with
    `hidden` [batch, kv_heads, width] True on entries a sequence does not use (padding, or a shorter budget than the
    batch's widest), and `keeps`, the tokens each sequence really attends."""

    indices: Tensor
    keeps: list[int]
    hidden: Tensor | None = None

    def bias(self, dtype) -> Tensor | None:
        if self.hidden is None:
            return None
        return torch.zeros(self.hidden.shape, dtype=dtype, device=self.hidden.device).masked_fill(
            self.hidden, float("-inf")).unsqueeze(2)


def pick(scores: Tensor, keeps: list[int], protect: Tensor, valid: Tensor | None) -> Selection:
    """The `keeps[b]` best tokens of each sequence (protected first) from scores [batch, heads, n]. Without
    padding: core's partial top-k, unordered. With padding: a sorted top-k, so that entries past a sequence's
    own budget (and any padding) are marked hidden rather than attended."""
    if valid is None and len(set(keeps)) == 1:
        return Selection(topk_keep(scores, keeps[0], protect, ordered=False), keeps)
    width = min(max(keeps), scores.shape[-1])
    ranked = scores.float().nan_to_num(nan=float("-inf")).masked_fill(protect, float("inf"))
    if valid is not None:
        ranked = ranked.masked_fill(~valid, float("-inf"))
    order = ranked.topk(width, dim=-1, sorted=True)
    rank = torch.arange(width, device=scores.device)[None, :]
    hidden = rank >= torch.tensor(keeps, device=scores.device)[:, None]
    hidden = hidden[:, None, :] | order.values.isneginf()  # padding never attended, even inside a budget
    return Selection(order.indices, keeps, hidden)


@dataclass
class SelectPolicy(DynamicPolicy):
    """Base of the dynamic selectors. Prefill is dense (counted as a dense fallback) unless `sparse_prefill`;
    each decode step scores the cached tokens of every full-attention layer, keeps each sequence's `budget`
    best per KV head (sinks and recent window included) and attends exactly over them. Subclasses implement
    `scores()` or override `choose()`.

    sparse_prefill: prompt queries attend block-sparsely too (see sparse/prefill.py), so long prompts get faster.
    """

    sparse_prefill: bool = False
    prefill_block: int = 128

    def branch_refusal(self, tail: int) -> str | None:
        return f"{self.name} attends sparsely during prefill" if self.sparse_prefill else None

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        """[batch, kv_heads, n] importance of every cached token for the grouped query q [b, kv, group, dim]."""
        raise NotImplementedError

    def extra_entries(self, n: int) -> int:
        """Entries attended besides the selected tokens (charged to the budget); none by default."""
        return 0

    def budgets(self, session, n: int, batch: int) -> list[int]:
        """Tokens each sequence may attend among the n cached: its budget less any extra entries."""
        return [max(0, self.budget.tokens(real) - self.extra_entries(n)) for real in session.real_lengths(n, batch)]

    @staticmethod
    def valid(session, keys: Tensor) -> Tensor | None:
        """bool [batch, 1, n]: False on padding slots; None without padding (`keys`: any [batch, ., n, ...])."""
        if session.pads is None:
            return None
        return torch.arange(keys.shape[2], device=keys.device)[None, None, :] >= session.pads.view(-1, 1, 1)

    def guard(self, session, keys: Tensor, keeps: list[int], slots: Tensor | None = None) -> Tensor:
        """Protected sinks + recent window per sequence, charged inside each budget: bool like `slots`
        (cache positions [batch, heads, m]; all n positions when None; `keys`: any [batch, ., n, ...])."""
        n = keys.shape[2]
        if slots is None:
            slots = torch.arange(n, device=keys.device).expand(keys.shape[0], 1, n)
        sizes = [self.budget.protect(k) for k in keeps]
        return protected(slots, n, [s for s, _ in sizes], [w for _, w in sizes], session.pads)

    def choose(self, session, module, query: Tensor, keys: Tensor, keeps: list[int]) -> Selection:
        q = grouped(query, keys.shape[1])
        return self.pick_best(session, self.scores(session, module, q, keys), keeps)

    def pick_best(self, session, scores: Tensor, keeps: list[int]) -> Selection:
        """Each sequence's `keeps` best tokens by `scores` [batch, kv_heads, n]: sinks and window first, padding
        never."""
        guard = self.guard(session, scores, keeps).expand_as(scores)
        valid = self.valid(session, scores)
        return pick(scores, keeps, guard, None if valid is None else valid.expand_as(scores))

    def attend(self, session, module, query, key, value, attention_mask, **kwargs):
        n, batch, decode = key.shape[2], query.shape[0], query.shape[2] == 1
        sliding = getattr(module, "sliding_window", None) is not None
        if self.budget.is_full:
            if decode and not sliding:
                session.usage.attended(session.real_lengths(n, batch))
            return session.dense(module, query, key, value, attention_mask, **kwargs)
        if sliding:  # a sliding layer reads its whole window, whatever the budget
            session.usage.dense(decode)
            return session.dense(module, query, key, value, attention_mask, **kwargs)
        keeps = self.budgets(session, n, batch)
        if not decode:
            if self.sparse_prefill:
                return sparse_prefill(session, query, key, value, module.scaling, self.budget,
                                      self.prefill_block), None
            session.usage.dense(decode=False)
            return session.dense(module, query, key, value, attention_mask, **kwargs)
        reals = session.real_lengths(n, batch)
        if all(keep >= real for keep, real in zip(keeps, reals, strict=True)):
            if any(self.budget.tokens(real) < real for real in reals):
                session.usage.dense(decode)  # the method cannot choose within this budget: dense, counted
            session.usage.attended(reals)  # every token read; exact when the budget covers them all
            return session.dense(module, query, key, value, attention_mask, **kwargs)
        selection = self.choose(session, module, query, key, keeps)
        session.usage.attended([k + self.extra_entries(n) for k in selection.keeps])
        return self.attend_selected(session, module, query, key, value, selection), None

    def attend_selected(self, session, module, query, key, value, selection: Selection) -> Tensor:
        idx = selection.indices
        return sparse_attend(query, gather_rows(key, idx), gather_rows(value, idx), module.scaling,
                             selection.bias(query.dtype))

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
