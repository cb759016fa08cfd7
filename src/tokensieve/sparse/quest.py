from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor
from torch.profiler import record_function

from tokensieve.core.code_pages import CodePages, code_page_bytes, summarises
from tokensieve.core.decode_kernel import HEAD_DIM_MULTIPLE, MAX_HEADS_PER_KV_HEAD
from tokensieve.core.kernels import optional
from tokensieve.core.quant import GROUP, SINKS, WINDOW
from tokensieve.core.quest_calls import QuestCall
from tokensieve.errors import TokensieveError
from tokensieve.sparse.base import SelectPolicy, grouped, sparse_attend

MAX_COMPILED_HEAD_DIM = 256  # the compiled step's buffers (core/quest_step.cpp)


@dataclass
class PageBounds:
    """Per complete page of `size` tokens from slot `origin`, the per-channel minimum and maximum of its keys
    [batch, kv_heads, pages, dim], extended as pages fill. `read(lo, hi)` gives the keys of slots [lo, hi): a new
    page is read once. Kept in float32 over a full-precision store (over a coded one `CodePages` summarises)."""

    size: int
    origin: int = 0
    low: Tensor | None = None
    high: Tensor | None = None

    def update(self, n: int, read: Callable[[int, int], Tensor]) -> tuple[Tensor | None, Tensor | None]:
        done = 0 if self.low is None else self.low.shape[2]
        complete = max(0, n - self.origin) // self.size
        if complete > done:
            lo, hi = self.origin + done * self.size, self.origin + complete * self.size
            low, high = page_extremes(read(lo, hi), self.size)
            self.low = low if self.low is None else torch.cat([self.low, low], 2)
            self.high = high if self.high is None else torch.cat([self.high, high], 2)
        return self.low, self.high

    def rewind(self, tokens: int) -> None:
        """Forget the pages past the first `tokens` keys (a tree decoder rolled the cache back)."""
        if self.low is not None:
            pages = max(0, tokens - self.origin) // self.size
            self.low, self.high = self.low[:, :, :pages], self.high[:, :, :pages]


def page_extremes(keys: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Per page of `size` rows of keys [b, h, pages * size, d], the per-channel minimum and maximum."""
    pages = keys.unflatten(2, (keys.shape[2] // size, size))
    return pages.amin(3), pages.amax(3)


@dataclass
class Quest(SelectPolicy):
    """Quest (Tang et al., "Quest: Query-Aware Sparsity for Efficient Long-Context LLM Inference", arXiv 2406.10774):
    the cache is cut into pages of `page` tokens, each summarised by the per-channel minimum and maximum of its keys
    (extended as pages fill). A decode query ranks the pages by the upper bound those give of q·k (per channel the
    larger of q·min and q·max, summed; the best over the KV head's query group) and attends exactly over the best
    pages' tokens. Every token of a page shares its page's rank, so the budget is filled page by page; the sinks,
    the recent window and the unfinished last page are always attended and charged to it.

    Over a quantized store (`--kv-dtype int8|int4`) pages start after the store's full-precision sinks, so each
    lies within one key group, and a page is summarised by its smallest and largest key code per channel
    (`core/code_pages.py`: the dequantized keys' exact bounds, 1/8 of float32 bounds' bytes at int4, 1/4 at int8).
    The newest pages, still at full precision, are bounded from their rows at each step. A decode step reads the
    codes on demand: only the selected rows are dequantized (`QuantizedLayer.gather`), not the whole layer.

    With the decode kernel (`decode_kernel=True`, `--decode-kernel`, a `+kernel` method) a decode step on CPU in
    float32 runs as one compiled call (`core/quest_step.cpp`): the same pages by the same bound, equal up to float
    rounding, with the slots of a page the budget cuts through taken from its start (the torch path's top-k leaves
    that tie arbitrary)."""

    name = "quest"
    reads_on_demand: ClassVar[bool] = True

    page: int = 16

    def __post_init__(self) -> None:
        if isinstance(self.page, bool) or not isinstance(self.page, int) or self.page < 1:
            raise TokensieveError(f"policy 'quest': option page={self.page!r} must be a whole number >= 1")

    def state_bytes(self, rows: int, kv_heads: int, head_dim: int, element: int, kv_bits: int | None = None) -> int:
        """The page bounds kept: float32 minimum and maximum keys per channel for every complete page over a
        full-precision store; over a coded one (`kv_bits`) two codes per channel for every page of coded rows
        (at most the rows past the sinks and the window), or float32 bounds where the page does not divide the
        key group."""
        if kv_bits is None:
            return rows // self.page * 2 * kv_heads * head_dim * element
        if summarises(self.page, GROUP):
            return code_page_bytes(max(0, rows - SINKS - WINDOW) // self.page, kv_heads, head_dim, kv_bits)
        return max(0, rows - SINKS) // self.page * 2 * kv_heads * head_dim * element

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        return self.page_scores(session, module, q, keys.shape[2], lambda lo, hi: keys[:, :, lo:hi])

    def page_scores(self, session, module, q: Tensor, n: int, read: Callable[[int, int], Tensor]) -> Tensor:
        """[batch, kv_heads, n]: each token scored by its page's bound for the grouped query q [b, kv, group, d];
        the slots before the first page and after the last complete one score +inf (they are always attended)."""
        origin, low, high = self.bounds(session, module, n, read, q.dtype)
        if low is None:  # not one page filled yet: every token is protected
            return q.new_full((q.shape[0], q.shape[1], n), float("inf"))
        # per channel the larger of q·min and q·max is q·max where q >= 0 and q·min where q < 0: two products
        bound = (q.clamp(min=0) @ high.transpose(2, 3) + q.clamp(max=0) @ low.transpose(2, 3)).amax(2)
        per_token = bound.repeat_interleave(self.page, -1)
        head = per_token.new_full((*per_token.shape[:2], origin), float("inf"))
        tail = per_token.new_full((*per_token.shape[:2], n - origin - per_token.shape[-1]), float("inf"))
        return torch.cat([head, per_token, tail], -1)

    def summaries(self, session, module, n: int, read: Callable[[int, int], Tensor]):
        """(origin, low, high, pages): the layer's kept summaries brought up to date, pages counted from slot
        `origin`. Float32 bounds (`low`, `high`) over a full-precision store, or where the page does not divide the
        key group; else the coded rows' code pages (`pages`, a CodePages; its codes None before any)."""
        layer = session.layer(module)
        origin = 0 if layer is None else layer.code_origin()
        if layer is None or layer.bits is None or not summarises(self.page, layer.group):
            low, high = self.scratch(session, module, "pages", lambda: PageBounds(self.page, origin)).update(n, read)
            return origin, low, high, None
        pages = self.scratch(session, module, "code pages", lambda: CodePages(self.page))
        pages.update(layer.coded())
        return origin, None, None, pages

    def bounds(self, session, module, n: int, read: Callable[[int, int], Tensor], dtype: torch.dtype):
        """(origin, low, high): every complete page's key minimum and maximum [b, kv_heads, pages, d] from slot
        `origin` (None before the first page): the kept summaries, then the newest pages from their rows."""
        origin, low, high, pages = self.summaries(session, module, n, read)
        parts = [] if low is None else [(low, high)]
        if pages is not None and pages.codes is not None:
            parts.append(pages.bounds(session.layer(module).coded(), dtype))
        done = origin + sum(part[0].shape[2] for part in parts) * self.page
        complete = origin + max(0, n - origin) // self.page * self.page
        if complete > done:
            parts.append(page_extremes(read(done, complete), self.page))
        if not parts:
            return origin, None, None
        return origin, torch.cat([p[0] for p in parts], 2), torch.cat([p[1] for p in parts], 2)

    def attend(self, session, module, query, key, value, attention_mask, **kwargs):
        layer = session.layer(module)  # None on a sliding-window layer, which reads its whole window
        if layer is not None and query.shape[2] == 1:  # a decode step reads its pages from the layer itself
            keeps = self.sparse_keeps(session, layer, query.shape[0])
            if keeps is not None:
                return self.attend_pages(session, module, query, layer, keeps), None
            if layer.deferred:  # the budget covers the cache: every row is read
                key, value = layer.rows()
        return super().attend(session, module, query, key, value, attention_mask, **kwargs)

    def sparse_keeps(self, session, layer, batch: int) -> list[int] | None:
        """Each sequence's slots to attend in a decode step over `layer`, or None where the budget covers every
        sequence's cache (the step attends densely)."""
        n = layer.stored
        keeps = self.budgets(session, n, batch)
        if self.budget.is_full or all(keep >= real for keep, real in
                                      zip(keeps, session.real_lengths(n, batch), strict=True)):
            return None
        return keeps

    def quest_call(self, session, module, query: Tensor) -> QuestCall | None:
        layer = session.layer(module)
        if layer is None or query.shape[2] != 1 or not self.compiled(session, query, layer):
            return None
        keeps = self.sparse_keeps(session, layer, query.shape[0])
        return None if keeps is None else self.compiled_call(session, module, query, layer, keeps[0])

    def attend_pages(self, session, module, query: Tensor, layer, keeps: list[int]) -> Tensor:
        """One decode step over a deferred layer: pages ranked from their bounds, the chosen rows gathered. Each
        part runs under a profiler label (`quest.*`), so a step's cost can be split (scripts/kv_store_cost.py);
        the compiled step has none (a label costs about 15 µs, paid 240 times a step at 8 × 4k)."""
        if self.compiled(session, query, layer):
            return self.compiled_call(session, module, query, layer, keeps[0]).run()
        with record_function("quest.bounds"):
            q = grouped(query, layer.keys.shape[1])
            scores = self.page_scores(session, module, q, layer.stored, layer.span_keys)
        with record_function("quest.pick"):
            selection = self.pick_best(session, scores, keeps)
        session.usage.attended(selection.keeps)
        with record_function("quest.gather"):
            keys, values = layer.gather(selection.indices)
        with record_function("quest.attend"):
            return sparse_attend(query, keys, values, module.scaling, selection.bias(query.dtype))

    def compiled_call(self, session, module, query: Tensor, layer, keep: int) -> QuestCall:
        """The decode step as one compiled call (`core/quest_step.cpp`), charged; with `vote_candidates()` > 1 the
        pages give that many times `keep` slots, ranked by their keys' soft vote (QuestVote)."""
        origin, low, high, pages = self.summaries(session, module, layer.stored, layer.span_keys)
        session.usage.attended([keep])
        sinks, window = self.budget.protect(keep)
        parts = layer.stored_parts()
        none = query.new_empty(0)
        codes = None if pages is None else pages.codes
        return QuestCall((query, none if low is None else low, none if high is None else high,
                          none.byte() if codes is None else codes, self.page, origin, keep, sinks, window,
                          parts.head_keys, parts.head_values, parts.hot_keys, parts.hot_values, parts.codes,
                          parts.bits, parts.group, module.scaling, self.vote_candidates()))

    def vote_candidates(self) -> int:
        """Slots read per slot attended, ranked by their keys' soft vote when more than 1 (QuestVote)."""
        return 1

    @staticmethod
    def compiled(session, query: Tensor, layer) -> bool:
        """Whether this step may run as one compiled call: asked for (`session.kernels`), one unpadded float32 CPU
        sequence, head_dim a multiple of 32 (at most 256), and the kernels built; else the torch path runs."""
        if not session.kernels or query.shape[0] != 1 or session.pads is not None:
            return False
        if query.device.type != "cpu" or query.dtype != layer.keys.dtype or query.dtype != torch.float32:
            return False
        dim = query.shape[-1]
        if dim % HEAD_DIM_MULTIPLE or dim > MAX_COMPILED_HEAD_DIM:
            return False
        if query.shape[1] // layer.keys.shape[1] > MAX_HEADS_PER_KV_HEAD:
            return False
        return optional() is not None
