"""Selection primitives: pure tensor functions from scores to the indices that stay (or are attended)."""

from __future__ import annotations

import torch
from torch import Tensor


def _per_sequence(value: int | list[int], like: Tensor) -> Tensor:
    """An int or one int per sequence as a [batch, 1, 1] tensor on `like`'s device."""
    if isinstance(value, int):
        return torch.tensor(value, device=like.device).view(1, 1, 1)
    return torch.tensor(value, device=like.device).view(-1, 1, 1)


def protected(positions: Tensor, seen: int, sinks: int | list[int], window: int | list[int],
              pads: Tensor | None = None) -> Tensor:
    """True where a token is a sink (real position < sinks) or in the recent window (the last `window` of the
    `seen` cache positions). positions: cache positions [batch, heads, n]; pads: left padding [batch], whose
    slots are never protected. `sinks` / `window` may be one count per sequence."""
    real = positions if pads is None else positions - pads.view(-1, 1, 1)
    sinks_t, window_t = _per_sequence(sinks, positions), _per_sequence(window, positions)
    return (real >= 0) & ((real < sinks_t) | (positions >= seen - window_t))


def topk_keep(scores: Tensor, keep: int | list[int], protect: Tensor | None = None, valid: Tensor | None = None,
              ordered: bool = True) -> Tensor:
    """Indices [batch, heads, width] of the best tokens along the last dim, protected ones first.

    scores [batch, heads, n]; protect / valid: bool [batch, heads, n]; keep: one count, or one per sequence.
    `valid` marks real tokens (False = padding): padding is never ranked among tokens, and a sequence that keeps
    fewer than `width` = max(keep) tokens fills its row with its own padding slots (so rows stay rectangular
    and the filler is masked out wherever it is used). Ties go to the earlier position. `ordered=False` (the
    decode hot path) takes a partial top-k instead, in no order and with ties broken arbitrarily.
    """
    n = scores.shape[-1]
    keeps = [keep] * scores.shape[0] if isinstance(keep, int) else list(keep)
    width = min(max(keeps), n)
    if width >= n and valid is None:
        return torch.arange(n, device=scores.device).expand(scores.shape).contiguous()
    ranked = scores.float().nan_to_num(nan=float("-inf"))
    if protect is not None:
        ranked = ranked.masked_fill(protect, float("inf"))
    if valid is not None:
        padding = ~valid
        spare = _per_sequence([width - k for k in keeps], scores)
        filler = padding & (padding.cumsum(-1) <= spare)
        ranked = ranked.masked_fill(padding, float("-inf")).masked_fill(filler, float("inf"))
    if not ordered:
        return ranked.topk(width, dim=-1, sorted=False).indices
    # a stable sort breaks ties (SnapKV's pooling makes many) by position, the same alone or in a padded batch
    indices = ranked.sort(dim=-1, descending=True, stable=True).indices[..., :width]
    return indices.sort(dim=-1).values


def vote(scores: Tensor, group: int) -> Tensor:
    """Per-head soft vote: [q_heads, n] -> [q_heads // group, n], each query head's softmax-normalised vote
    summed within a KV group (TokenSelect-style, arXiv 2411.02886)."""
    heads, n = scores.shape[-2:]
    probs = torch.softmax(scores.float(), dim=-1)
    return probs.reshape(*scores.shape[:-2], heads // group, group, n).sum(-2)
