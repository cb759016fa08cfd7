from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.pages import best_pages, page_scores, span
from tokensieve.errors import TokensieveError
from tokensieve.sparse.base import Selection, SelectPolicy, grouped
from tokensieve.sparse.quest import page_extremes


@dataclass
class PagedQuest(SelectPolicy):
    """Quest (Tang et al., "Quest: Query-Aware Sparsity for Efficient Long-Context LLM Inference", arXiv 2406.10774)
    as a paged engine can run it: each decode step attends whole pages of `page` tokens, the same pages for every
    KV head of a layer, since such an engine hands its kernel one block table per request. Pages are ranked by
    Quest's upper bound of q·k from their keys' per-channel minimum and maximum, turned into the largest share of
    each head's attention the page could draw, summed over the heads (`core/pages.py`). Page 0 (the sinks) and the
    pages holding the last `budget.window` tokens are always attended, and the budget is rounded down to whole
    pages (`core.pages.span`).

    This is what the vLLM plugin's `quest_paged` runs inside vLLM's paged cache (`tokensieve.vllm`), with `page`
    its block size; here it gives the harness the same selection to measure. It recomputes the page bounds from the
    keys at each step, so it keeps no state (the plugin keeps them per block: 2 x 4 bytes per channel, KV head and
    block)."""

    name = "quest_paged"

    page: int = 128

    def __post_init__(self) -> None:
        if isinstance(self.page, bool) or not isinstance(self.page, int) or self.page < 1:
            raise TokensieveError(f"policy 'quest_paged': option page={self.page!r} must be a whole number >= 1")

    def budgets(self, session, n: int, batch: int) -> list[int]:
        keeps = []
        for real in session.real_lengths(n, batch):
            pages = span(real, self.budget.tokens(real), self.page, self.budget.window)
            keeps.append(real if pages is None else pages.attended_tokens)
        return keeps

    def choose(self, session, module, query: Tensor, keys: Tensor, keeps: list[int]) -> Selection:
        batch, kv_heads, n = keys.shape[:3]
        q = grouped(query, kv_heads)
        pads = [0] * batch if session.pads is None else session.pads.tolist()
        rows = [self.attended_slots(q[b: b + 1], keys[b: b + 1, :, pads[b]:], module.scaling) + pads[b]
                for b in range(batch)]
        width = max(len(row) for row in rows)
        indices = torch.stack([torch.cat([row, row.new_zeros(width - len(row))]) for row in rows])
        lengths = torch.tensor([len(row) for row in rows], device=keys.device)
        hidden = torch.arange(width, device=keys.device)[None, :] >= lengths[:, None]
        return Selection(indices[:, None].expand(batch, kv_heads, width), [len(row) for row in rows],
                         hidden[:, None].expand(batch, kv_heads, width) if hidden.any() else None)

    def attended_slots(self, q: Tensor, keys: Tensor, scale: float) -> Tensor:
        """The slots one sequence's step attends, ascending: keys [1, kv_heads, real, dim], no padding."""
        real = keys.shape[2]
        pages = span(real, self.budget.tokens(real), self.page, self.budget.window)
        if pages is None:
            return torch.arange(real, device=keys.device)
        low, high = page_extremes(keys[:, :, self.page: pages.first_recent * self.page], self.page)
        chosen = best_pages(page_scores(q, low, high, scale), torch.tensor([pages.chosen], device=keys.device))
        attended = torch.cat([chosen[0] + 1, torch.arange(pages.first_recent, pages.pages, device=keys.device)])
        slots = (attended[:, None] * self.page + torch.arange(self.page, device=keys.device)).flatten()
        return torch.cat([torch.arange(self.page, device=keys.device), slots[slots < real]])
