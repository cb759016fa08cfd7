"""What an encoder method is: after a layer, a scorer looks at what that layer's attention saw, and a reducer
removes `remove[b]` rows of each sequence b (pruned or merged). The schedule decides `remove`; the run loop
(`encoder.run`) does the rest. Selection helpers shared by the methods live here too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from tokensieve.encoder.tokens import Tokens


@dataclass
class Seen:
    """What one layer's attention recorded for the scorers (each only when a method needs it)."""

    keys: Tensor | None = None  # [batch, rows, head_dim]: keys averaged over heads (ToMe's metric)
    pool: Tensor | None = None  # [batch, rows]: attention the pooled query pays each row, mean over heads
    graph: Tensor | None = None  # [batch, rows, rows]: attention probabilities, mean over heads (query -> key)


@dataclass
class EncoderMethod:
    """A training-free reduction between encoder layers. Subclasses set `name`, `paper`, what they need recorded
    (`needs` ⊆ {"keys", "pool", "graph"}), whether merged rows need proportional attention, and `reduce`."""

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    merges: ClassVar[bool] = False  # merged rows stand for several tokens: attention gets the log-size bias

    def reduce(self, tokens: Tokens, seen: Seen, remove: Tensor, layer: int, layers: int) -> Tokens:
        raise NotImplementedError


def removable(tokens: Tokens) -> Tensor:
    return tokens.valid & ~tokens.protected


def rank_of(score: Tensor, descending: bool = True) -> Tensor:
    """[batch, rows] long: each row's 0-based rank by score within its sequence (ties by position)."""
    order = torch.sort(score, dim=1, descending=descending, stable=True).indices
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def ranked(score: Tensor, count: Tensor, allowed: Tensor) -> Tensor:
    """bool [batch, rows]: the `count[b]` allowed rows of highest score in each sequence (ties by position)."""
    rank = rank_of(score.masked_fill(~allowed, float("-inf")))
    return (rank < count.unsqueeze(1)) & allowed


def prune_lowest(tokens: Tokens, score: Tensor, remove: Tensor) -> Tokens:
    """Drop the `remove[b]` removable rows of lowest score."""
    return tokens.keep(~ranked(-score, remove, removable(tokens)))


def cosine(metric: Tensor) -> Tensor:
    """[batch, rows, rows] cosine similarity of the rows of `metric` within each sequence."""
    unit = F.normalize(metric.float(), dim=-1)
    return unit @ unit.transpose(1, 2)


def bipartite(similarity: Tensor, a: Tensor, b: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
    """Bipartite soft matching (ToMe): every row of set `a` finds its most similar row of set `b`; the `count[b]`
    best-matched `a` rows are the sources, merged into their matches. Returns (src mask, dst index)."""
    allowed = a[:, :, None] & b[:, None, :]
    best, dst = similarity.masked_fill(~allowed, float("-inf")).max(-1)
    src = ranked(best, count, a & torch.isfinite(best))
    return src, dst
