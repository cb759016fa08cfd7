"""One forward for many sequences, each with its own cache and its own policy (the engine's batched step).

The tokens of every scheduled sequence are laid end to end in a single row, as vLLM flattens its batches:
embeddings, projections, MLPs and the LM head run once for all of them, so the weights are read once per step.
Attention is the only per-sequence part. `PackedCache.update` appends each segment's keys and values into that
sequence's own SieveCache; the "tokensieve-packed" attention function then attends each segment under that
sequence's Session (policy + budget) through tokensieve's one hook, `sieve_attention`, so every policy and
selector behaves exactly as it does in `generate`, evictions included.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import AttentionInterface

from tokensieve.core.cache import SieveCache, SieveLayer
from tokensieve.core.gemm import packed_linears, prepack
from tokensieve.core.hooks import (
    SESSION_ATTR,
    attention_implementation,
    attention_modules,
    attention_name,
    sieve_attention,
    sieve_quest_call,
)
from tokensieve.core.int8_kernel import int8_products
from tokensieve.core.quest_calls import QuestCall, run_quest_calls
from tokensieve.core.session import Session
from tokensieve.errors import TokensieveError
from tokensieve.weights import precision_of

NAME = "tokensieve-packed"
_ACTIVE = threading.local()  # the PackedCache of the forward running on this thread


@dataclass
class Segment:
    """One sequence's share of a packed step: `length` new tokens appended to `cache` under `session`."""

    cache: SieveCache
    session: Session
    length: int

    def positions(self, device) -> Tensor:
        """RoPE positions of this segment's tokens: their true positions, or (rolling positions) positions
        counted from the fewest tokens any layer stores, as `Session.roll` does for a one-sequence forward."""
        seen = self.cache.get_seq_length()
        base = seen
        if self.session.rope is not None:
            base = min((layer.stored for layer in self.cache.sieve_layers.values()), default=0)
            self.session.rolling_base = base
        return torch.arange(base, base + self.length, device=device)


class PackedCache:
    """What the model's attention modules see as their cache during a packed forward: it routes each segment's
    new keys and values into its own cache and keeps what each layer returned, for `packed_attention`."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        bounds, start = [], 0
        for segment in segments:
            bounds.append((start, start + segment.length))
            start += segment.length
        self.bounds = bounds
        self.states: dict[int, list[tuple[Tensor, Tensor]]] = {}

    def update(self, key_states: Tensor, value_states: Tensor, layer_idx: int, *args, **kwargs):
        self.states[layer_idx] = [
            segment.cache.layers[layer_idx].update(key_states[:, :, lo:hi], value_states[:, :, lo:hi])
            for segment, (lo, hi) in zip(self.segments, self.bounds, strict=True)
        ]
        return key_states, value_states

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0


def _segment_mask(layer, q_len: int, k_len: int, window: int | None, device) -> Tensor | None:
    """bool [1, 1, q, k]: each new token sees the stored tokens at or before it (and within a sliding window)."""
    if q_len == 1 and not window:
        return None
    seen = layer.seen if isinstance(layer, SieveLayer) else layer.get_seq_length()
    query_pos = torch.arange(seen - q_len, seen, device=device)[:, None]
    if isinstance(layer, SieveLayer):
        key_pos = layer.positions[0, 0][None, :]
    else:  # transformers' own layers keep their last k tokens in order
        key_pos = torch.arange(seen - k_len, seen, device=device)[None, :]
    visible = key_pos <= query_pos
    if window:
        visible &= query_pos - key_pos < window
    return visible[None, None]


def packed_attention(module, query: Tensor, key: Tensor, value: Tensor, attention_mask, **kwargs):
    """Attend each segment of the packed row under its own session; outputs are laid back end to end. The
    segments whose decode step is one compiled Quest call (`sieve_quest_call`) run in one call together."""
    packed: PackedCache | None = getattr(_ACTIVE, "cache", None)
    if packed is None:
        raise TokensieveError("the packed attention ran outside a packed forward")
    outputs: list[Tensor | None] = []
    calls: dict[int, QuestCall] = {}
    states = packed.states.pop(module.layer_idx)  # an evicted layer's old buffers are freed as soon as it attended
    window = kwargs.pop("sliding_window", None) or getattr(module, "sliding_window", None)
    for at, (segment, (lo, hi), (keys, values)) in enumerate(zip(packed.segments, packed.bounds, states, strict=True)):
        setattr(module, SESSION_ATTR, segment.session)
        call = sieve_quest_call(module, query[:, :, lo:hi])
        if call is not None:
            calls[at] = call
            outputs.append(None)
            continue
        layer = segment.cache.layers[module.layer_idx]
        mask = _segment_mask(layer, hi - lo, keys.shape[-2], window, query.device)
        output, _ = sieve_attention(module, query[:, :, lo:hi], keys, values, mask, **kwargs)
        outputs.append(output)
    for at, output in zip(calls, run_quest_calls(list(calls.values())), strict=True):
        outputs[at] = output
        lo, hi = packed.bounds[at]
        packed.segments[at].session.after_attention(module, query[:, :, lo:hi])
    return torch.cat(outputs, 1), None


AttentionInterface.register(NAME, packed_attention)


class PackedModel:
    """A model run by the engine: one packed forward per step, under the packed attention. `packed_gemm`: the
    step's linear layers multiply three or more rows through oneDNN with prepacked weights (`core.gemm`: equal to
    aten's products up to float rounding, a second copy of every fp32 linear weight); packed here, once.
    `int8_kernel`: int8 weights' products of up to 16 rows run compiled (`core.int8_kernel`)."""

    def __init__(self, model: torch.nn.Module, packed_gemm: bool = False, int8_kernel: bool = False) -> None:
        self.model = model
        self.int8_kernel = int8_kernel and precision_of(model) == "int8"  # no per-step search of other models
        self.modules = attention_modules(model)
        self.dense_name = attention_name(model)
        self.packed_gemm = packed_gemm
        if packed_gemm:
            prepack(model)

    @torch.inference_mode()
    def forward(self, ids: list[list[int]], segments: list[Segment]) -> Tensor:
        """Logits [segments, vocab] at the last token of each segment."""
        device = self.model.device
        flat = torch.tensor([[t for row in ids for t in row]], dtype=torch.long, device=device)
        positions = torch.cat([s.positions(device) for s in segments])[None]
        packed = PackedCache(segments)
        lasts = torch.tensor([hi - 1 for _, hi in packed.bounds], device=device)
        _ACTIVE.cache = packed
        for segment in segments:
            segment.cache.defer_reads(True)  # the packed attention reads quantized codes on demand
        try:
            with attention_implementation(self.model, NAME), int8_products(self.model, self.int8_kernel), \
                    packed_linears(self.model) if self.packed_gemm else nullcontext():
                out = self.model(input_ids=flat, position_ids=positions, cache=packed, use_cache=True,
                                 logits_to_keep=lasts)
        finally:
            _ACTIVE.cache = None
            for segment in segments:
                segment.cache.defer_reads(False)
            for module in self.modules:
                if hasattr(module, SESSION_ATTR):
                    delattr(module, SESSION_ATTR)
        return out.logits[0]
