"""Microseconds per call of Quest's compiled decode step (`core/quest_step.cpp`) on a synthetic layer shaped like one
of SmolLM2's at 4k: 3 KV heads, 9 query heads, head_dim 64, 4,103 random rows over int4 codes, 12.5 % kept (513
slots), with its pages bounded two ways: float32 bounds from slot 0 (before the code pages) and code pages after
the sinks (`core/code_pages.py`, the newest pages from their rows), and with code pages choosing four times the
budget for the soft vote (QuestVote's step, `sparse/quest_vote.py`). Rounds of 100 calls of each in turn, after 50
warm ones, with 2 threads and with 1; the median round. With `packed`: QuestVote's step over 240 such layers, as
the server's step at 8 × 4k visits them (30 layers × 8 sequences, caches cold), one call a layer and sequence
(`quest_step`) against one call a layer for its 8 sequences (`quest_steps`, the packed step's), in alternating
rounds; the median round. docs/KV-STORE.md quotes:

    .venv/bin/python scripts/quest_step_cost.py
    .venv/bin/python scripts/quest_step_cost.py packed
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from tokensieve.core.code_pages import CodePages
from tokensieve.core.kernels import extension
from tokensieve.core.quant_layer import QuantizedLayer
from tokensieve.sparse.quest import page_extremes

TOKENS, KV_HEADS, GROUP, DIM, PAGE, KEEP, ROUNDS, CALLS = 4103, 3, 3, 64, 16, 513, 10, 100


def int4_layer() -> QuantizedLayer:
    layer = QuantizedLayer(4)
    layer.update(torch.randn(1, KV_HEADS, TOKENS, DIM), torch.randn(1, KV_HEADS, TOKENS, DIM))
    layer.compact()
    return layer


def vote_step(layer: QuantizedLayer) -> tuple:
    """quest_step's arguments for QuestVote's step over `layer` (code pages, 4 candidates a slot)."""
    parts, none = layer.stored_parts(), torch.empty(0)
    return (torch.randn(1, KV_HEADS * GROUP, 1, DIM), none, none, CodePages(PAGE).update(layer.coded()), PAGE,
            layer.code_origin(), KEEP, 4, 32, parts.head_keys, parts.head_values, parts.hot_keys, parts.hot_values,
            parts.codes, parts.bits, parts.group, DIM ** -0.5, 4)


def packed(sequences: int = 8, layers: int = 30, rounds: int = 8) -> None:
    torch.manual_seed(0)
    steps = [vote_step(int4_layer()) for _ in range(sequences * layers)]
    kernels = extension()
    torch.set_num_threads(2)
    times: dict[str, list[float]] = {"a call per layer and sequence": [], "a call per layer": []}
    for _ in range(rounds):
        start = time.perf_counter()
        for step in steps:
            kernels.quest_step(*step)
        times["a call per layer and sequence"].append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        for at in range(0, len(steps), sequences):
            kernels.quest_steps(steps[at: at + sequences])
        times["a call per layer"].append((time.perf_counter() - start) * 1e3)
    print(f"{sequences} sequences x {layers} layers, 2 threads: " + ", ".join(
        f"{name} {statistics.median(t):.1f} ms a step" for name, t in times.items()))


def main() -> None:
    torch.manual_seed(0)
    layer = int4_layer()
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
    if sys.argv[1:] == ["packed"]:
        packed()
    else:
        main()
