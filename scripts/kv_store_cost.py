"""Batch-1 decode cost of each storage precision and of Quest, on one long needle prompt, in one run:
- decode tokens/s next to full's (the faster of two interleaved runs each), and the KV bytes after the prompt;
- the attention-free bound: full decoding after a prompt of a few dozen tokens, what a step costs when attention
  reads next to nothing;
- where a step's time goes: the seconds spent dequantizing every layer's codes (timed alone on the same cache), and
  Quest's decode attention split into its parts (page bounds scanned, pages picked, rows gathered and dequantized,
  attention over them; from the profiler labels `quest.*`).

The numbers in docs/KV-STORE.md come from:

    .venv/bin/python scripts/kv_store_cost.py qwen2.5-coder-0.5b 8000 32
    .venv/bin/python scripts/kv_store_cost.py smollm2-135m 4000 32

A fourth argument keeps only the named methods (comma-separated, full always first): `full,quest,quest@int4`;
a `+kernel` label runs with the decode kernel and Quest's compiled step (`full+kernel,quest@int4+kernel`).
"""

from __future__ import annotations

import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from tokensieve.core.cache import QuantizedLayer, SieveCache
from tokensieve.core.hooks import apply
from tokensieve.data.needle import needle_case
from tokensieve.methods import make
from tokensieve.models import cached_load
from tokensieve.run import generate

METHODS = (("full", 1.0, "fp"), ("full", 1.0, "int8"), ("full", 1.0, "int4"), ("quest", 0.125, "fp"),
           ("quest", 0.125, "int4"), ("tokenselect", 0.125, "fp"), ("tokenselect", 0.125, "int4"),
           ("snapkv", 0.125, "fp"), ("full", 1.0, "fp", True), ("quest", 0.125, "int4", True),
           ("quest_vote", 0.125, "int4"), ("quest_vote", 0.125, "int4", True))
KERNEL = "+kernel"  # a label's suffix: the decode kernel (and Quest's compiled step), `generate(decode_kernel=True)`
REPEATS = 2


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


def method_label(name: str, kv_dtype: str, kernel: bool = False) -> str:
    return (f"{name}@{kv_dtype}" if kv_dtype != "fp" else name) + (KERNEL if kernel else "")


def main(model: str, tokens: int, new_tokens: int, only: str = "") -> None:
    _, tok = cached_load(model)
    case = needle_case(tok, tokens, 0.5)
    wanted = set(only.split(",")) | {"full"} if only else None
    chosen = [m for m in METHODS if wanted is None or method_label(m[0], m[2], *m[3:]) in wanted]
    best: dict[str, tuple] = {}
    for _ in range(REPEATS):  # interleaved rounds; each method keeps its fastest run
        for name, budget, kv_dtype, *kernel in chosen:
            r = generate(model, case.context, case.question, name, budget, kv_dtype=kv_dtype,
                         max_new_tokens=new_tokens, answer_prefix=case.answer_prefix, decode_kernel=bool(kernel))
            label = method_label(name, kv_dtype, bool(kernel))
            if label not in best or r.stats.decode_tok_s > best[label][2].decode_tok_s:
                best[label] = (label, budget, r.stats, case.expected in r.answer)
    rows = list(best.values())
    full = rows[0][2]
    ids = tok(case.context + case.question, return_tensors="pt").input_ids
    print(f"{model}, {full.prompt_tokens}-token prompt, {new_tokens} new tokens, batch 1, best of {REPEATS} runs")
    print("| method | budget | decode tok/s | vs full | KV bytes after the prompt | vs full's bytes | found |")
    print("|---|---|---|---|---|---|---|")
    for label, budget, s, found in rows:
        print(f"| {label} | {budget} | {s.decode_tok_s:.1f} | {s.decode_tok_s / full.decode_tok_s:.2f}x | "
              f"{s.kv_bytes_kept / 2**20:.1f} MiB | {s.kv_bytes_kept / s.kv_bytes_full:.3f} | "
              f"{'yes' if found else 'no'} |")
    bound = generate(model, case.context[:200], case.question, "full", 1.0, max_new_tokens=new_tokens,
                     answer_prefix=case.answer_prefix).stats
    print(f"attention-free bound: {bound.decode_tok_s:.1f} tok/s after a {bound.prompt_tokens}-token prompt, "
          f"{bound.decode_tok_s / full.decode_tok_s:.2f}x full")
    for kv_dtype in ("int8", "int4"):
        seconds = dequantize_seconds(model, ids, kv_dtype)
        print(f"dequantizing every layer's {kv_dtype} codes once: {seconds * 1000:.1f} ms "
              f"(a full-precision decode step: {1000 / full.decode_tok_s:.1f} ms)")
    for kv_dtype in ("fp", "int4"):
        parts, steps = quest_breakdown(model, case, kv_dtype, new_tokens)
        split = ", ".join(f"{name} {ms / steps:.1f}" for name, ms in parts.items())
        print(f"{method_label('quest', kv_dtype)} per decode step, all layers, ms (profiled): {split}")


def quest_breakdown(model: str, case, kv_dtype: str, new_tokens: int) -> tuple[dict[str, float], int]:
    """Milliseconds per part of Quest's decode attention (the torch path's), summed over layers and steps, and the
    steps."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        generate(model, case.context, case.question, "quest", 0.125, kv_dtype=kv_dtype,
                 max_new_tokens=new_tokens, answer_prefix=case.answer_prefix)
    totals = {e.key: e.cpu_time_total / 1000 for e in prof.key_averages() if e.key.startswith("quest.")}
    return {name: totals.get(f"quest.{name}", 0.0) for name in ("bounds", "pick", "gather", "attend")}, new_tokens - 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
