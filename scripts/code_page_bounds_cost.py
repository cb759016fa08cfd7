"""Microseconds per call of `CodePages.bounds` (core/code_pages.py: a coded layer's page bounds from its code pages)
on a synthetic int4 layer shaped like one of SmolLM2's at 4k (3 KV heads, head_dim 64, 4,103 rows, pages of 16);
the median of 10 rounds of 200 calls. The compiled loop runs where it builds; `TOKENSIEVE_KERNELS=off` times the
torch path. docs/KV-STORE.md quotes:

    .venv/bin/python scripts/code_page_bounds_cost.py
    TOKENSIEVE_KERNELS=off .venv/bin/python scripts/code_page_bounds_cost.py
"""

from __future__ import annotations

import statistics
import time

import torch

from tokensieve.core.code_pages import CodePages
from tokensieve.core.quant_layer import QuantizedLayer


def main() -> None:
    torch.manual_seed(0)
    layer = QuantizedLayer(4)
    layer.update(torch.randn(1, 3, 4103, 64), torch.randn(1, 3, 4103, 64))
    layer.compact()
    pages = CodePages(16)
    pages.update(layer.coded())
    rounds = []
    for _ in range(10):
        start = time.perf_counter()
        for _ in range(200):
            pages.bounds(layer.coded(), torch.float32)
        rounds.append((time.perf_counter() - start) / 200 * 1e6)
    print(f"{pages.pages} pages: {statistics.median(rounds):.0f} µs a call")


if __name__ == "__main__":
    main()
