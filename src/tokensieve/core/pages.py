"""Whole-page selection for one decode step, shared by tokensieve's `quest_paged` and the vLLM plugin's page
selection: how many pages a step attends at a budget, and the score that ranks the pages it may choose. The score
is one per page for all of a layer's KV heads, because a paged engine gives a request one block table per layer
step, not one per head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class PageSpan:
    """A decode step over `tokens` cached tokens in pages of `size`: it attends page 0 (the sinks), the pages from
    `first_recent` on (the recent window and the unfinished page), and the `chosen` best of the pages between."""

    tokens: int
    size: int
    chosen: int
    first_recent: int

    @property
    def pages(self) -> int:
        return -(-self.tokens // self.size)

    @property
    def candidates(self) -> int:
        """Pages 1 .. first_recent - 1, which compete for the `chosen` places."""
        return self.first_recent - 1

    @property
    def recent_tokens(self) -> int:
        return self.tokens - self.first_recent * self.size

    @property
    def attended_pages(self) -> int:
        return 1 + self.chosen + self.pages - self.first_recent

    @property
    def attended_tokens(self) -> int:
        return (1 + self.chosen) * self.size + self.recent_tokens


def span(tokens: int, keep: int, size: int, window: int) -> PageSpan | None:
    """The step's pages for a budget of `keep` tokens, or None when it covers every page (dense is exact). Whole
    pages only: the attended count is the budget rounded down to whole chosen pages, never above it, except that
    page 0 and the pages holding the last `window` tokens are always attended."""
    first_recent = max(1, (tokens - window) // size)
    if first_recent < 2:
        return None
    chosen = max(0, (keep - (tokens - first_recent * size)) // size - 1)
    if chosen >= first_recent - 1:
        return None
    return PageSpan(tokens, size, chosen, first_recent)


def page_scores(q: Tensor, low: Tensor, high: Tensor, scale: float, valid: Tensor | None = None) -> Tensor:
    """[batch, pages]: q [batch, kv_heads, group, dim], each page's per-channel key minimum and maximum `low`,
    `high` [batch, kv_heads, pages, dim]; `valid` [batch, pages] False on padding pages (scored -inf).

    Quest's bound per head (Tang et al., arXiv 2406.10774): per channel the larger of q·min and q·max, summed, the
    best over the head's query group. Turned into the largest share of that head's attention the page could draw
    (a softmax of the scaled bounds over the pages), summed over the KV heads, so every head has one vote."""
    q = q.float()
    bound = (q.clamp(min=0) @ high.float().transpose(2, 3) + q.clamp(max=0) @ low.float().transpose(2, 3)).amax(2)
    bound = bound * scale
    if valid is not None:
        bound = bound.masked_fill(~valid[:, None, :], float("-inf"))
    return torch.softmax(bound, dim=-1).sum(1).masked_fill(bound[:, 0].isneginf(), float("-inf"))


def best_pages(scores: Tensor, chosen: Tensor) -> Tensor:
    """[batch, max(chosen)]: each row's `chosen[b]` best pages by `scores` [batch, pages], ascending; the places
    past a row's own count hold `scores.shape[1]` (past every page)."""
    width = int(chosen.max()) if chosen.numel() else 0
    order = scores.topk(width, dim=-1).indices
    past = torch.arange(width, device=scores.device)[None, :] >= chosen[:, None]
    return order.masked_fill(past, scores.shape[1]).sort(dim=-1).values
