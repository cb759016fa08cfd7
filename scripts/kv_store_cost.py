"""Batch-1 decode cost of each storage precision and of Quest, on one long needle prompt, in one run: decode
tokens/s next to full's, the KV bytes after the prompt, and where a quantized step's time goes (the seconds
spent dequantizing every layer's codes, timed alone on the same cache). The numbers in docs/KV-STORE.md come from:

    .venv/bin/python scripts/kv_store_cost.py qwen2.5-coder-0.5b 8000 32
    .venv/bin/python scripts/kv_store_cost.py smollm2-135m 4000 32
"""

from __future__ import annotations

import sys
import time

import torch

from tokensieve.core.cache import QuantizedLayer, SieveCache
from tokensieve.core.hooks import apply
from tokensieve.data.needle import needle_case
from tokensieve.methods import make
from tokensieve.models import cached_load
from tokensieve.run import generate

METHODS = (("full", 1.0, "fp"), ("full", 1.0, "int8"), ("full", 1.0, "int4"), ("quest", 0.125, "fp"),
           ("quest", 0.125, "int4"), ("tokenselect", 0.125, "fp"), ("tokenselect", 0.125, "int4"),
           ("snapkv", 0.125, "fp"))


def dequantize_seconds(model: str, ids: torch.Tensor, kv_dtype: str, repeats: int = 5) -> float:
    """Seconds to dequantize every layer's codes once (what one decode step of a quantized store adds)."""
    net, _ = cached_load(model)
    cache = SieveCache(net.config, kv_dtype=kv_dtype)
    with torch.inference_mode(), apply(net, make("full")):
        net(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        cache.compact()
        layers = [layer for layer in cache.layers if isinstance(layer, QuantizedLayer)]
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for layer in layers:
                layer.rows()
            best = min(best, time.perf_counter() - start)
    return best


def main(model: str, tokens: int, new_tokens: int) -> None:
    _, tok = cached_load(model)
    case = needle_case(tok, tokens, 0.5)
    rows = []
    for name, budget, kv_dtype in METHODS:
        r = generate(model, case.context, case.question, name, budget, kv_dtype=kv_dtype, max_new_tokens=new_tokens,
                     answer_prefix=case.answer_prefix)
        rows.append((f"{name}@{kv_dtype}" if kv_dtype != "fp" else name, budget, r.stats, case.expected in r.answer))
    full = rows[0][2]
    ids = tok(case.context + case.question, return_tensors="pt").input_ids
    print(f"{model}, {full.prompt_tokens}-token prompt, {new_tokens} new tokens, batch 1")
    print("| method | budget | decode tok/s | vs full | KV bytes after the prompt | vs full's bytes | found |")
    print("|---|---|---|---|---|---|---|")
    for label, budget, s, found in rows:
        print(f"| {label} | {budget} | {s.decode_tok_s:.1f} | {s.decode_tok_s / full.decode_tok_s:.2f}x | "
              f"{s.kv_bytes_kept / 2**20:.1f} MiB | {s.kv_bytes_kept / s.kv_bytes_full:.3f} | "
              f"{'yes' if found else 'no'} |")
    for kv_dtype in ("int8", "int4"):
        seconds = dequantize_seconds(model, ids, kv_dtype)
        print(f"dequantizing every layer's {kv_dtype} codes once: {seconds * 1000:.1f} ms "
              f"(a full-precision decode step: {1000 / full.decode_tok_s:.1f} ms)")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
