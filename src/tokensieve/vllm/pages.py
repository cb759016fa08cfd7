"""Page selection inside vLLM (stage 3, `tokensieve_policy: quest_paged`): each decode step of a selector's request
attends block 0, its newest blocks and the best of the others, chosen per layer by Quest's bound from each block's
key summary; nothing is freed, so it saves attention reads, not memory. The same choice as tokensieve's
`quest_paged` with `page` the block size (`core/pages.py` holds what both share).

- The builder (`plan_pages`) finds the blocks a selector's row completes in this step, and cuts each selecting
  decode row's length to what it attends, once for all layers (whole pages, so every layer attends as many).
- The impl (`PageSummaries`, one per layer) keeps each completed block's per-channel key minimum and maximum,
  indexed by physical block id and read back through the learnt layout, and rewrites the selecting rows of its own
  copy of the block table before vLLM's kernel runs."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor
from vllm.v1.attention.backend import CommonAttentionMetadata

from tokensieve.core.pages import best_pages, page_scores
from tokensieve.vllm.layout import Layout
from tokensieve.vllm.plan import step_pages
from tokensieve.vllm.rows import ROWS


@dataclass
class PageRows:
    """One step's selectors: the physical blocks their rows complete (summarised once, by every layer), and, for
    the decode rows that attend chosen pages, what every layer shares: their batch rows, their block rows as vLLM
    built them [R, max blocks], which candidates are theirs, and the logical pages they attend but for the
    chosen ones (`PageSummaries.choose` fills those in)."""

    complete: Tensor
    rows: Tensor
    queries: Tensor  # each selecting row's query token in the step's query tensor
    tokens: Tensor  # [R] cached tokens (trace)
    chosen: Tensor  # [R] pages to choose
    attended: Tensor  # [R] pages attended (trace)
    blocks: Tensor
    valid: Tensor  # [R, candidates]: candidate page 1 + c is the row's own
    fixed: Tensor  # [R, max attended] block 0, then the newest pages after the chosen places (0 there)
    picks: Tensor  # [R, max attended] True at the chosen places (1 .. chosen)
    order: Tensor  # [1, max attended] 0 .. max attended - 1


def plan_pages(cm: CommonAttentionMetadata, block_size: int) -> tuple[PageRows | None, CommonAttentionMetadata]:
    """This step's page selection, and the metadata with each selecting row's length cut to what it attends."""
    starts, lengths = cm.query_start_loc_cpu.tolist(), cm.seq_lens.tolist()
    complete, rows, spans = [], [], []
    for row, state in ROWS.items():
        if row >= cm.num_reqs or not state.rule.selects:
            continue
        n, queries = lengths[row], starts[row + 1] - starts[row]
        if n // block_size > (n - queries) // block_size:
            complete.append(cm.block_table_tensor[row, (n - queries) // block_size: n // block_size])
        pages = step_pages(n, state.rule.budget, block_size) if queries == 1 else None
        if pages is not None:  # a prompt's queries attend densely (vLLM's prefill kernel)
            rows.append(row)
            spans.append(pages)
    if not complete and not rows:
        return None, cm
    device = cm.seq_lens.device
    if rows:
        seq_lens = cm.seq_lens.clone()  # the runner's own buffer is never written
        for row, pages in zip(rows, spans, strict=True):
            seq_lens[row] = pages.attended_tokens
        cm = replace(cm, seq_lens=seq_lens)

    def field(name: str) -> Tensor:
        return torch.tensor([getattr(p, name) for p in spans], dtype=torch.long, device=device)
    index = torch.tensor(rows, dtype=torch.long, device=device)
    none = torch.empty(0, dtype=torch.long, device=device)
    chosen, first_recent, attended = field("chosen"), field("first_recent"), field("attended_pages")
    candidates = int(first_recent.max()) - 1 if rows else 0
    order = torch.arange(int(attended.max()) if rows else 0, device=device)[None, :]
    recent = first_recent[:, None] + order - 1 - chosen[:, None]
    picks = (order >= 1) & (order <= chosen[:, None])
    fixed = torch.where(order == 0, 0, torch.where(picks, 0, recent)).clamp(max=cm.block_table_tensor.shape[1] - 1)
    valid = torch.arange(candidates, device=device)[None, :] < first_recent[:, None] - 1
    found = PageRows(torch.cat(complete).long() if complete else none, index,
                     cm.query_start_loc[index] if rows else none, field("tokens"), chosen, attended,
                     cm.block_table_tensor[index].long(), valid, fixed, picks, order)
    return found, cm


class PageSummaries:
    """One layer's key summaries: per physical block, the per-channel minimum and maximum of its keys
    [num_blocks, kv_heads, head_size] in float32, allocated for the whole pool at the first selector's block:
    1 / block_size of an fp32 cache's bytes (1/128 at vLLM's CPU default), 2 / block_size of a bf16 one."""

    def __init__(self) -> None:
        self.low: Tensor | None = None
        self.high: Tensor | None = None

    def update(self, kv_cache: Tensor, blocks: Tensor, layout: Layout) -> None:
        if not len(blocks):
            return
        if self.low is None:
            shape = (kv_cache.shape[0], kv_cache.shape[1], layout.head_size)
            self.low = torch.zeros(shape, dtype=torch.float32, device=kv_cache.device)
            self.high = torch.zeros_like(self.low)
        keys = layout.read_keys(kv_cache, blocks).float()  # [blocks, block_size, kv_heads, head_size]
        self.low[blocks], self.high[blocks] = keys.amin(1), keys.amax(1)

    def choose(self, pages: PageRows, query: Tensor, scale: float) -> Tensor:
        """Logical pages [R, max attended] each selecting row attends in this layer, ascending: block 0, its
        chosen blocks, its newest blocks (entries past a row's own count repeat a page the kernel never reads)."""
        rows, kv_heads = len(pages.rows), self.low.shape[1]
        blocks = pages.blocks[:, 1: 1 + pages.valid.shape[1]]  # candidate pages 1 .. first_recent - 1
        low, high = (part[blocks].transpose(1, 2) for part in (self.low, self.high))  # [R, kv, pages, dim]
        q = query[pages.queries].view(rows, kv_heads, -1, query.shape[-1])
        best = best_pages(page_scores(q, low, high, scale, pages.valid), pages.chosen) + 1
        best = torch.cat([best, best.new_zeros(rows, 1)], 1)  # one column more: never empty
        chosen = best.gather(1, (pages.order - 1).clamp(0, best.shape[1] - 1))
        return torch.where(pages.picks, chosen, pages.fixed)

    def block_table(self, pages: PageRows, logical: Tensor, table: Tensor) -> Tensor:
        """A copy of the step's block table whose selecting rows list the blocks of their `logical` pages."""
        table = table.clone()
        table[pages.rows, : logical.shape[1]] = pages.blocks.gather(1, logical).to(table.dtype)
        return table
