"""Cost: kept KV bytes and peak RSS (measured), prefill seconds and decode tokens/s (warm-up, repetitions,
median) and an attention FLOPs estimate."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """What the FLOPs estimate needs of a model."""

    layers: int
    q_heads: int
    head_dim: int

    @classmethod
    def of(cls, config) -> Shape:
        text = config.get_text_config()
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        return cls(text.num_hidden_layers, text.num_attention_heads, head_dim)


def attention_flops(shape: Shape, prompt: int, kept: list[int] | float, new_tokens: int,
                    chunk: int | None = None) -> float:
    """Multiply-adds x2 of QK^T and PV, summed over layers and query heads.

    Prefill: causal over the prompt (with chunked eviction, each chunk attends to at most budget + chunk
    keys). Decode: each new token attends to the kept tokens plus those generated before it. Scoring
    overhead of the policies themselves is not included.
    """
    per_pair = 4 * shape.q_heads * shape.head_dim  # 2 flops x (QK + PV)
    kept_mean = sum(kept) / len(kept) if isinstance(kept, list) else float(kept)
    if chunk is None or chunk >= prompt:
        prefill_pairs = prompt * (prompt + 1) / 2
    else:
        prefill_pairs, stored = 0.0, 0.0
        for start in range(0, prompt, chunk):
            q = min(chunk, prompt - start)
            prefill_pairs += q * stored + q * (q + 1) / 2
            stored = min(stored + q, kept_mean) if kept_mean < prompt else stored + q
    decode_pairs = sum(kept_mean + i for i in range(1, new_tokens))
    return shape.layers * per_pair * (prefill_pairs + decode_pairs)


def median_timed(run: Callable[[], dict], repeats: int, warmup: int = 1) -> tuple[dict, dict]:
    """Run `warmup` untimed runs, then `repeats` runs; return the first timed run's result and the medians of
    its timing fields (prefill_s, decode_tok_s) over the repetitions, with their spread."""
    for _ in range(warmup):
        run()
    results = [run() for _ in range(max(repeats, 1))]
    timing = {}
    for name in ("prefill_s", "decode_tok_s"):
        values = [r[name] for r in results if r.get(name) is not None]
        if values:
            timing[name] = statistics.median(values)
            timing[f"{name}_all"] = values
    timing["repeats"] = len(results)
    return results[0], timing
