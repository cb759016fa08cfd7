"""Microseconds per call of Quest's compiled decode step (`core/quest_step.cpp`) on a synthetic layer shaped like one
of SmolLM2's at 4k: 3 KV heads, 9 query heads, head_dim 64, 4,103 random rows over int4 codes, 12.5 % kept (513
slots), with its pages bounded two ways: float32 bounds from slot 0 (before the code pages) and code pages after
the sinks (`core/code_pages.py`, the newest pages from their rows), and with code pages choosing four times the
budget for the soft vote (QuestVote's step, `sparse/quest_vote.py`). Rounds of 100 calls of each in turn, after 50
warm ones, with 2 threads and with 1; the median round. docs/KV-STORE.md quotes:

    .venv/bin/python scripts/quest_step_cost.py
"""

from __future__ import annotations

import statistics
import time

import torch

from tokensieve.core.code_pages import CodePages
from tokensieve.core.kernels import extension
from tokensieve.core.quant_layer import QuantizedLayer
from tokensieve.sparse.quest import page_extremes

TOKENS, KV_HEADS, GROUP, DIM, PAGE, KEEP, ROUNDS, CALLS = 4103, 3, 3, 64, 16, 513, 10, 100


def main() -> None:
    torch.manual_seed(0)
    layer = QuantizedLayer(4)
    layer.update(torch.randn(1, KV_HEADS, TOKENS, DIM), torch.randn(1, KV_HEADS, TOKENS, DIM))
    layer.compact()
    keys = layer.rows()[0]
    low, high = page_extremes(keys[:, :, : TOKENS // PAGE * PAGE], PAGE)
    codes = CodePages(PAGE).update(layer.coded())
    parts = layer.stored_parts()
    query, none = torch.randn(1, KV_HEADS * GROUP, 1, DIM), torch.empty(0)
    rest = (KEEP, 4, 32, parts.head_keys, parts.head_values, parts.hot_keys, parts.hot_values, parts.codes,
            parts.bits, parts.group, DIM ** -0.5)
    ways = {"float32 bounds": (query, low, high, none.byte(), PAGE, 0, *rest, 1),
            "code pages": (query, none, none, codes, PAGE, layer.code_origin(), *rest, 1),
            "code pages, 4x candidates voted (quest_vote)": (query, none, none, codes, PAGE, layer.code_origin(),
                                                              *rest, 4)}
    kernels = extension()
    for threads in (2, 1):
        torch.set_num_threads(threads)
        rounds: dict[str, list[float]] = {name: [] for name in ways}
        for args in ways.values():
            for _ in range(50):
                kernels.quest_step(*args)
        for _ in range(ROUNDS):
            for name, args in ways.items():
                start = time.perf_counter()
                for _ in range(CALLS):
                    kernels.quest_step(*args)
                rounds[name].append((time.perf_counter() - start) / CALLS * 1e6)
        print(f"{threads} threads: " + ", ".join(f"{name} {statistics.median(times):.0f} µs a call"
                                                 for name, times in rounds.items()))


if __name__ == "__main__":
    main()
