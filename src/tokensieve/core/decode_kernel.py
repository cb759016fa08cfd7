"""A CPU kernel for the dense attention of one-token decode steps, opt-in (`decode_kernel=True`).

At batch 8 × 4k on SmolLM2 the server's step reads 1.5 GB of KV, and torch's sdpa reads it at about a third of this
CPU's memory bandwidth: for one query it runs a blocked flash kernel built for many. `decode_attention.cpp` reads
every key and value row once for all the query heads that share it, in 256-token chunks spread over torch's
threads, and merges the chunks' partial softmaxes (docs/DECODE.md has the measured step).

Only calls it computes exactly as sdpa would, up to float rounding, are routed to it: a float32 CPU query of one
token and batch 1, no mask (the whole cache is attended), no dropout, softcap, sliding window, position bias or
attention sinks, a head_dim that is a multiple of 32, at most 16 query heads per KV head. Every other call, and
every call on another device, goes to the model's own attention unchanged. The result differs from sdpa's only in
summation order (within 2e-6 relative at 4k tokens, tests/test_decode_kernel.py), so it is opt-in: the default
path stays bit-identical to the unmodified model.

The kernel is compiled once per machine (`core.kernels`, about 40 s), for CPUs that torch reports as AVX2 or
better; `core.kernels.unavailable()` names what is missing otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from tokensieve.core.kernels import extension

HEAD_DIM_MULTIPLE = 32
MAX_HEADS_PER_KV_HEAD = 16


def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(scale · q kᵀ) v for query [1, H, 1, D] over keys and values [1, G, N, D]: [1, H, 1, D]."""
    return extension().attend(query, keys, values, scale)


def takes(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask, kwargs: dict) -> bool:
    """Whether the kernel computes this dense attention call exactly as the model's own would (see above)."""
    batch, heads, length, head_dim = query.shape
    window = kwargs.get("sliding_window")
    return (
        query.device.type == "cpu" and batch == 1 and length == 1 and attention_mask is None
        and query.dtype == key.dtype == value.dtype == torch.float32
        and not kwargs.get("dropout") and kwargs.get("softcap") is None and kwargs.get("position_bias") is None
        and kwargs.get("s_aux") is None and (window is None or window >= key.shape[-2])
        and head_dim % HEAD_DIM_MULTIPLE == 0 and key.shape[-2] > 0
        and heads % key.shape[1] == 0 and heads // key.shape[1] <= MAX_HEADS_PER_KV_HEAD
        and all(t.stride(-1) == 1 and t.stride(-2) == head_dim for t in (key, value))
    )


class KernelAttention:
    """The model's dense attention with one-token decode steps routed to the kernel; `calls` counts those.
    `enabled = False` sends every call to the model's attention (a benchmark interleaves both on the same caches)."""

    def __init__(self, dense: Callable) -> None:
        extension()  # build (or refuse) now, not inside the first decode step
        self.dense = dense
        self.calls = 0
        self.enabled = True

    def __call__(self, module, query, key, value, attention_mask, **kwargs):
        if not self.enabled or not takes(query, key, value, attention_mask, kwargs):
            return self.dense(module, query, key, value, attention_mask, **kwargs)
        self.calls += 1
        scale = kwargs.get("scaling") or query.shape[-1] ** -0.5
        return attend(query, key, value, scale).transpose(1, 2).contiguous(), None


def with_kernel(dense: Callable, enabled: bool, device: torch.device) -> Callable:
    """`dense` itself when not enabled or off CPU (where the kernel has nothing to do); else a KernelAttention."""
    return KernelAttention(dense) if enabled and device.type == "cpu" else dense
