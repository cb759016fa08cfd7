"""vLLM's CPU attention backend with holes: the builder hands the kernel each compacted request's first blocks
plus its tail, with the hidden length taken off; the impl, right after a prompt's last chunk has been attended
densely, writes the kept tokens into the request's first blocks through vLLM's own cache-write op (so the ISA's
block layout, AMX packing included, is never read or written by hand)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
from vllm.v1.attention.backend import CommonAttentionMetadata
from vllm.v1.attention.backends.cpu_attn import (
    CPUAttentionBackend,
    CPUAttentionBackendImpl,
    CPUAttentionMetadata,
    CPUAttentionMetadataBuilder,
)

from tokensieve.vllm import scoring
from tokensieve.vllm.rows import ROWS, Chunk, RowState

TRACE_ENV = "TOKENSIEVE_VLLM_TRACE"  # a folder: each compaction saves its kept positions there, per layer (tests)


@dataclass
class Job:
    """What one row needs from every layer in this step: keep its prefill chunk, or compact its prompt."""

    state: RowState
    start: int  # the row's first query in this step
    end: int  # one past the row's last prompt query in this step
    compact: bool  # the prompt ends in this step
    blocks: torch.Tensor  # the row's first `hole.keep_blocks` block ids


@dataclass
class SieveMetadata(CPUAttentionMetadata):
    jobs: list[Job] = field(default_factory=list)


def plan_rows(cm: CommonAttentionMetadata) -> tuple[list[Job], CommonAttentionMetadata]:
    """This step's jobs, and the metadata with every compacted row's hole cut out of its block row and length."""
    starts = cm.query_start_loc_cpu.tolist()
    lengths = cm.seq_lens.tolist()
    jobs: list[Job] = []
    seq_lens, table = cm.seq_lens, cm.block_table_tensor
    for row, state in ROWS.items():
        if row >= cm.num_reqs:
            continue
        hole, start, end = state.hole, starts[row], starts[row + 1]
        before = lengths[row] - (end - start)  # tokens already cached before this step
        if state.compacted:
            if seq_lens is cm.seq_lens:  # the runner's own buffers are never written
                seq_lens, table = seq_lens.clone(), table.clone()
            keep, tail = hole.keep_blocks, hole.tail_block
            table[row, keep: table.shape[1] - (tail - keep)] = cm.block_table_tensor[row, tail:]
            seq_lens[row] -= hole.hidden_tokens
        elif before < hole.prompt_tokens:  # a prefill chunk: keep it, or compact if the prompt ends here
            last = min(end, start + hole.prompt_tokens - before)
            ends = before + last - start == hole.prompt_tokens
            jobs.append(Job(state, start, last, ends, cm.block_table_tensor[row, : hole.keep_blocks].clone()))
            state.compacted = ends  # the next step attends around the hole
    return jobs, replace(cm, seq_lens=seq_lens, block_table_tensor=table)


class SieveMetadataBuilder(CPUAttentionMetadataBuilder):
    def build(self, common_prefix_len: int, common_attn_metadata: CommonAttentionMetadata,
              fast_build: bool = False) -> CPUAttentionMetadata:
        jobs, cm = plan_rows(common_attn_metadata) if ROWS else ([], common_attn_metadata)
        built = super().build(common_prefix_len, cm, fast_build)
        if not jobs:
            return built
        return SieveMetadata(**{f.name: getattr(built, f.name) for f in fields(built)}, jobs=jobs)


class SieveCPUAttentionImpl(CPUAttentionBackendImpl):
    def forward(self, layer, query, key, value, kv_cache, attn_metadata, output, output_scale=None,
                output_block_scale=None):
        result = super().forward(layer, query, key, value, kv_cache, attn_metadata, output, output_scale,
                                 output_block_scale)
        if isinstance(attn_metadata, SieveMetadata):
            for job in attn_metadata.jobs:
                self.run_job(job, layer, query, key, value, kv_cache)
        return result

    def run_job(self, job: Job, layer, query, key, value, kv_cache) -> None:
        name = layer.layer_name
        observe = scoring.observed_queries(job.state.rule.policy)
        chunk = Chunk(key[job.start: job.end].clone(), value[job.start: job.end].clone(),
                      query[max(job.start, job.end - observe): job.end].clone())
        chunks = job.state.chunks.setdefault(name, [])
        chunks.append(chunk)
        if not job.compact:
            return
        del job.state.chunks[name]
        keys = torch.cat([c.keys for c in chunks])
        values = torch.cat([c.values for c in chunks])
        queries = torch.cat([c.queries for c in chunks])[-observe:] if observe else query[:0]
        keep = scoring.choose(scoring.scores(job.state.rule.policy, queries, keys, self.scale), job.state.hole)
        if os.environ.get(TRACE_ENV):
            torch.save(keep.cpu(), Path(os.environ[TRACE_ENV]) / f"{name}.pt")
        index = keep.T.unsqueeze(-1).expand(-1, -1, keys.shape[-1])  # [kept, kv_heads, dim]
        bs = job.state.hole.block_size
        slots = (job.blocks[:, None] * bs + torch.arange(bs, device=job.blocks.device)).flatten()
        self.do_kv_cache_update(layer, keys.gather(0, index), values.gather(0, index), kv_cache,
                                slots.to(torch.int64))


class SieveCPUBackend(CPUAttentionBackend):
    @staticmethod
    def get_impl_cls() -> type[CPUAttentionBackendImpl]:
        return SieveCPUAttentionImpl

    @staticmethod
    def get_builder_cls() -> type[CPUAttentionMetadataBuilder]:
        return SieveMetadataBuilder
