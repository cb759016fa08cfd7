"""Microseconds per call of Quest's compiled decode step (`core/quest_step.cpp`) on a synthetic layer shaped like one
of SmolLM2's at 4k: 3 KV heads, 9 query heads, head_dim 64, 4,103 random rows over int4 codes, 12.5 % kept (513
slots); 500 calls after 50 warm ones, with 2 threads and with 1. docs/KV-STORE.md quotes:

    .venv/bin/python scripts/quest_step_cost.py
"""

from __future__ import annotations

import time

import torch

from tokensieve.core.kernels import extension
from tokensieve.core.quant_layer import QuantizedLayer

TOKENS, KV_HEADS, GROUP, DIM, PAGE, KEEP = 4103, 3, 3, 64, 16, 513


def main() -> None:
    torch.manual_seed(0)
    layer = QuantizedLayer(4)
    layer.update(torch.randn(1, KV_HEADS, TOKENS, DIM), torch.randn(1, KV_HEADS, TOKENS, DIM))
    layer.compact()
    keys = layer.rows()[0]
    pages = TOKENS // PAGE
    paged = keys[:, :, : pages * PAGE].unflatten(2, (pages, PAGE))
    parts = layer.stored_parts()
    args = (torch.randn(1, KV_HEADS * GROUP, 1, DIM), paged.amin(3), paged.amax(3), PAGE, KEEP, 4, 32,
            parts.head_keys, parts.head_values, parts.hot_keys, parts.hot_values, parts.codes, parts.bits,
            parts.group, DIM ** -0.5)
    kernels = extension()
    for threads in (2, 1):
        torch.set_num_threads(threads)
        for _ in range(50):
            kernels.quest_step(*args)
        start = time.perf_counter()
        for _ in range(500):
            kernels.quest_step(*args)
        print(f"{threads} threads: {(time.perf_counter() - start) / 500 * 1e6:.0f} µs a call")


if __name__ == "__main__":
    main()
