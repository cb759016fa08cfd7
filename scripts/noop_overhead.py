"""No-op overhead: plain transformers (DynamicCache, sdpa) vs tokensieve.apply(full) on the same prompt.

Interleaved runs in one process; prints the median prefill seconds and decode tokens/s of each and their ratio.
Usage: .venv/bin/python scripts/noop_overhead.py [--tokens 1000] [--steps 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import DynamicCache

import tokensieve
from tokensieve.core.cache import SieveCache
from tokensieve.data.corpus import haystack
from tokensieve.models import cached_load


def run(model, ids, steps: int, sieve: bool) -> tuple[float, float, list[int]]:
    cache = SieveCache(model.config) if sieve else DynamicCache(config=model.config)
    start = time.perf_counter()
    logits = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
    prefill = time.perf_counter() - start
    tokens, start = [], time.perf_counter()
    for _ in range(steps):
        token = logits[:, -1:].argmax(-1)
        tokens.append(int(token))
        logits = model(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
    return prefill, steps / (time.perf_counter() - start), tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model, tok = cached_load("smollm2-135m")
    ids = tok(haystack(tok, args.tokens), return_tensors="pt").input_ids
    runs: dict[str, list] = {"plain": [], "tokensieve full": []}
    with torch.inference_mode():
        for _ in range(args.repeats):
            runs["plain"].append(run(model, ids, args.steps, sieve=False))
            with tokensieve.apply(model, tokensieve.make("full")):
                runs["tokensieve full"].append(run(model, ids, args.steps, sieve=True))
    assert runs["plain"][0][2] == runs["tokensieve full"][0][2], "the no-op path must give the same tokens"
    medians = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
               for name, rs in runs.items()}
    for name, (prefill, rate) in medians.items():
        print(f"{name:>16}: prefill {prefill:.3f} s, decode {rate:.2f} tok/s")
    (p_plain, r_plain), (p_sieve, r_sieve) = medians["plain"], medians["tokensieve full"]
    print(f"ratio tokensieve/plain: prefill time {p_sieve / p_plain:.3f}, decode speed {r_sieve / r_plain:.3f}"
          f" ({ids.shape[1]} prompt tokens, {args.steps} steps, median of {args.repeats})")


if __name__ == "__main__":
    main()
