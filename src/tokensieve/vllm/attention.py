"""vLLM's CPU attention backend with holes: the builder hands the kernel each compacted request's first blocks
plus its tail, with the hidden length taken off; the impl, right after a step that reaches a compaction point
(the prompt's end, then every `every` generated tokens) has attended, reads the attended tokens back from the
paged cache (`layout`), scores them and writes the kept ones into the request's first blocks through vLLM's own
cache-write op. So no ISA's block layout, AMX packing included, is written by hand, and the worker keeps no copy
of a prompt: only each row's last few queries. A selector's rows (`quest_paged`) attend chosen pages instead, freeing
nothing (`pages.py`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
from vllm import _custom_ops as ops
from vllm.v1.attention.backend import CommonAttentionMetadata
from vllm.v1.attention.backends.cpu_attn import (
    CPUAttentionBackend,
    CPUAttentionBackendImpl,
    CPUAttentionMetadata,
    CPUAttentionMetadataBuilder,
)

from tokensieve.vllm import scoring
from tokensieve.vllm.layout import Layout, UnreadableLayout, probe
from tokensieve.vllm.pages import PageRows, PageSummaries, plan_pages
from tokensieve.vllm.plan import active
from tokensieve.vllm.rows import ROWS, RowState

TRACE_ENV = "TOKENSIEVE_VLLM_TRACE"  # a folder: each compaction saves its kept positions there, per layer (tests)


@dataclass
class Job:
    """What one row needs from every layer in this step: keep its newest queries for the next compaction, and,
    when the step reaches that compaction point, compact."""

    state: RowState
    start: int  # the row's first query in this step
    end: int  # one past the row's last query up to the compaction point
    compact: bool  # the step reaches the compaction point
    attended: torch.Tensor  # the block ids the kernel read for this row, in order (read back to compact)
    positions: torch.Tensor  # [attended tokens] their positions, kept tokens as slot numbers (all below the tail)
    candidates: int  # how many of the attended tokens compete for the kept blocks (the rest is the new tail)
    fresh: torch.Tensor  # true positions of the candidates after the kept ones (the old tail's front)
    kept_blocks: torch.Tensor  # the row's first `keep_blocks` block ids, refilled


@dataclass
class SieveMetadata(CPUAttentionMetadata):
    jobs: list[Job] = field(default_factory=list)
    pages: PageRows | None = None
    layout: Layout | None = None


def plan_rows(cm: CommonAttentionMetadata) -> tuple[list[Job], CommonAttentionMetadata]:
    """This step's jobs, and the metadata with every compacted row's hole cut out of its block row and length."""
    starts = cm.query_start_loc_cpu.tolist()
    lengths = cm.seq_lens.tolist()
    jobs: list[Job] = []
    seq_lens, table = cm.seq_lens, cm.block_table_tensor
    for row, state in ROWS.items():
        if row >= cm.num_reqs or state.hole is None:
            continue
        hole, start, end = state.hole, starts[row], starts[row + 1]
        before = lengths[row] - (end - start)  # tokens already cached before this step
        hidden, tail = hole.hidden_at(before), hole.tail_block_at(before)
        if hidden:
            if seq_lens is cm.seq_lens:  # the runner's own buffers are never written
                seq_lens, table = seq_lens.clone(), table.clone()
            keep = hole.keep_blocks
            table[row, keep: table.shape[1] - (tail - keep)] = cm.block_table_tensor[row, tail:]
            seq_lens[row] -= hidden
        point = hole.next_compaction(before)
        observe = scoring.observed_queries(state.rule.policy)
        if point is None or lengths[row] <= point - max(observe, 1):
            continue  # neither a compaction nor one of the queries it scores in this step
        bs = hole.block_size
        kept = hole.keep_blocks * bs if hidden else 0  # tokens in the kept blocks (none before the prompt's end)
        attended = point - hidden  # tokens the kernel sees for this row at the compaction point
        candidates = attended - (point - hole.tail_block_at(point) * bs)  # all but the new tail
        in_place = torch.arange(tail * bs if hidden else 0, point, device=cm.seq_lens.device)  # after the kept blocks
        positions = torch.cat([torch.arange(kept, device=in_place.device), in_place])
        jobs.append(Job(state, start, min(end, start + point - before), compact=lengths[row] >= point,
                        attended=table[row, : -(-attended // bs)].clone(), positions=positions,
                        candidates=candidates, fresh=in_place[: candidates - kept],
                        kept_blocks=cm.block_table_tensor[row, : hole.keep_blocks].clone()))
    return jobs, replace(cm, seq_lens=seq_lens, block_table_tensor=table)


class SieveMetadataBuilder(CPUAttentionMetadataBuilder):
    def __init__(self, kv_cache_spec, layer_names, vllm_config, device) -> None:
        super().__init__(kv_cache_spec, layer_names, vllm_config, device)
        self.layout = self.learn_layout(device) if active(vllm_config.scheduler_config.scheduler_cls) else None

    def learn_layout(self, device) -> Layout:
        """The cache's layout, learnt from vLLM's own write op; refuses to start, with one line, if unreadable."""
        dtype = self.kv_cache_spec.dtype
        like = torch.empty(1, self.num_kv_heads, self.block_size, 2 * self.head_dim, dtype=dtype, device=device)

        def write(keys, values, cache, slots) -> None:
            key_cache, value_cache = cache.view(1, cache.shape[1], 2 * self.block_size, -1).chunk(2, dim=2)
            ops.cpu_attn_reshape_and_cache(keys, values, key_cache, value_cache, slots, self.isa,
                                           kv_cache_dtype=self.kv_cache_dtype)
        try:
            if self.kv_cache_dtype != "auto":
                raise UnreadableLayout(f"kv cache dtype {self.kv_cache_dtype} stores scales beside the codes")
            return probe(write, like)
        except UnreadableLayout as err:
            raise SystemExit(f"tokensieve: cannot read vLLM's {self.isa} KV cache layout: {err}") from None

    def build(self, common_prefix_len: int, common_attn_metadata: CommonAttentionMetadata,
              fast_build: bool = False) -> CPUAttentionMetadata:
        jobs, cm = plan_rows(common_attn_metadata) if ROWS else ([], common_attn_metadata)
        pages, cm = plan_pages(cm, self.block_size) if ROWS else (None, cm)
        built = super().build(common_prefix_len, cm, fast_build)
        if not jobs and pages is None:
            return built
        return SieveMetadata(**{f.name: getattr(built, f.name) for f in fields(built)}, jobs=jobs, pages=pages,
                             layout=self.layout)


class SieveCPUAttentionImpl(CPUAttentionBackendImpl):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.summaries = PageSummaries()
        self.chosen_pages: dict[int, list[int]] = {}  # cached tokens -> pages attended (trace, one request)

    def forward(self, layer, query, key, value, kv_cache, attn_metadata, output, output_scale=None,
                output_block_scale=None):
        if isinstance(attn_metadata, SieveMetadata) and attn_metadata.pages is not None:
            attn_metadata = self.select_pages(layer, query, kv_cache, attn_metadata)
        result = super().forward(layer, query, key, value, kv_cache, attn_metadata, output, output_scale,
                                 output_block_scale)
        if isinstance(attn_metadata, SieveMetadata):
            for job in attn_metadata.jobs:
                self.run_job(job, attn_metadata.layout, layer, query, kv_cache)
        return result

    def select_pages(self, layer, query, kv_cache, metadata: SieveMetadata) -> SieveMetadata:
        """Summarise the blocks completed in this step, then point each selecting row at the pages it attends in
        this layer."""
        pages = metadata.pages
        self.summaries.update(kv_cache, pages.complete, metadata.layout)
        if not len(pages.rows):
            return metadata
        logical = self.summaries.choose(pages, query, self.scale)
        if os.environ.get(TRACE_ENV):
            self.chosen_pages[int(pages.tokens[0])] = logical[0, : int(pages.attended[0])].tolist()
            torch.save(self.chosen_pages, Path(os.environ[TRACE_ENV]) / f"{layer.layer_name}.pages.pt")
        return replace(metadata, block_table=self.summaries.block_table(pages, logical, metadata.block_table))

    def run_job(self, job: Job, layout: Layout, layer, query, kv_cache) -> None:
        name, state = layer.layer_name, job.state
        observe = scoring.observed_queries(state.rule.policy)
        if observe:
            recent = query[job.start: job.end]
            if name in state.queries:
                recent = torch.cat([state.queries[name], recent])
            state.queries[name] = recent[-observe:].clone()
        if not job.compact:
            return
        queries = state.queries.pop(name, query[:0])
        keys, values = layout.read(kv_cache, job.attended)
        keys, values = keys[: len(job.positions)], values[: len(job.positions)]
        hole = state.hole
        chosen = scoring.choose(scoring.scores(state.rule.policy, queries, keys, self.scale, job.positions),
                                job.candidates, hole.keep_blocks * hole.block_size)  # [kv_heads, kept]
        heads, earlier = chosen.shape[0], job.candidates - len(job.fresh)
        known = state.positions.get(name)
        if known is None or known.shape[1] != earlier:  # the row was re-added: only slot numbers are known
            known = job.positions[:earlier].expand(heads, -1)
        state.positions[name] = torch.cat([known, job.fresh.expand(heads, -1)], dim=1).gather(1, chosen)
        if os.environ.get(TRACE_ENV):
            torch.save(state.positions[name].cpu(), Path(os.environ[TRACE_ENV]) / f"{name}.pt")
        index = chosen.T.unsqueeze(-1).expand(-1, -1, keys.shape[-1])  # [kept, kv_heads, dim]
        bs = hole.block_size
        slots = (job.kept_blocks[:, None] * bs + torch.arange(bs, device=job.kept_blocks.device)).flatten()
        self.do_kv_cache_update(layer, keys.gather(0, index), values.gather(0, index), kv_cache,
                                slots.to(torch.int64))


class SieveCPUBackend(CPUAttentionBackend):
    @staticmethod
    def get_impl_cls() -> type[CPUAttentionBackendImpl]:
        return SieveCPUAttentionImpl

    @staticmethod
    def get_builder_cls() -> type[CPUAttentionMetadataBuilder]:
        return SieveMetadataBuilder
