"""Selection primitives: pure tensor functions from scores to the indices that stay."""

from __future__ import annotations

import torch
from torch import Tensor


def protected(positions: Tensor, seen: int, sinks: int, window: int) -> Tensor:
    """True where a token is a sink (absolute position < sinks) or in the recent window."""
    return (positions < sinks) | (positions >= seen - window)


def topk_keep(scores: Tensor, keep: int, protect: Tensor | None = None) -> Tensor:
    """Indices of the `keep` best tokens along the last dim, protected ones first, returned sorted.

    scores: [..., n]; protect: bool [..., n]. A partial top-k (not a full sort): this runs at every decode step.
    """
    n = scores.shape[-1]
    if keep >= n:
        return torch.arange(n, device=scores.device).expand(scores.shape).contiguous()
    ranked = scores.float().nan_to_num(nan=float("-inf"))
    if protect is not None:
        ranked = ranked.masked_fill(protect, float("inf"))
    return ranked.topk(keep, dim=-1, sorted=False).indices.sort(dim=-1).values


def vote(scores: Tensor, group: int) -> Tensor:
    """Per-head soft vote: [q_heads, n] -> [q_heads // group, n], each query head's softmax-normalised vote
    summed within a KV group (TokenSelect-style, arXiv 2411.02886)."""
    heads, n = scores.shape[-2:]
    probs = torch.softmax(scores.float(), dim=-1)
    return probs.reshape(*scores.shape[:-2], heads // group, group, n).sum(-2)
