"""Issue 29, step 5 ("everywhere it helps"): what prepacked oneDNN linears (`core.gemm.packed_linears`) gain in
chunked prefill and in the encoder, each measured against today's aten path in the same process, interleaved.

    .venv/bin/python scripts/packed_everywhere.py prefill MODEL PROMPT_TOKENS CHUNK [ROUNDS]
    .venv/bin/python scripts/packed_everywhere.py encoder BATCH TOKENS [ROUNDS]

- `prefill`: `tokensieve.run.generate` on an essay prompt of about PROMPT_TOKENS tokens, prefilled in pieces of
  CHUNK tokens (`chunk=`), one new token; its `prefill_s` with and without the packed linears, alternating.
- `encoder`: MiniLM-L6 (sentence-transformers) encoding BATCH essay passages of exactly TOKENS tokens in one batch.
Prints the median seconds of each path, the packed path's speed-up as the geometric mean of the per-round ratios
with a bootstrap 95 % interval over rounds, and how far the packed outputs are from aten's (the first token must
agree; the embeddings' largest cosine distance).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch

from tokensieve.bench.stats import bootstrap_mean
from tokensieve.core.gemm import packed_linears


def compare(name: str, model: torch.nn.Module, run: Callable[[], tuple[float, object]], rounds: int) -> list:
    """Alternate aten and packed runs; `run` returns (seconds, output). Returns both paths' last outputs."""
    run()  # warm-up: the first forwards of a process are slow
    with packed_linears(model):
        run()  # packs every weight once, outside the clock
    seconds: dict[bool, list[float]] = {False: [], True: []}
    outputs = {}
    for _ in range(rounds):
        for packed in (False, True):
            with packed_linears(model) if packed else nullcontext():
                spent, outputs[packed] = run()
            seconds[packed].append(spent)
    logs = [math.log(a / p) for a, p in zip(seconds[False], seconds[True], strict=True)]
    low, high = bootstrap_mean(logs)
    print(f"{name}: aten {statistics.median(seconds[False]):.3f} s, packed {statistics.median(seconds[True]):.3f} s, "
          f"speed-up {math.exp(sum(logs) / len(logs)):.2f}x [{math.exp(low):.2f}-{math.exp(high):.2f}] "
          f"over {rounds} rounds", flush=True)
    return [outputs[False], outputs[True]]


def prefill(model: str, prompt_tokens: int, chunk: int, rounds: int) -> None:
    from tokensieve.data.corpus import haystack
    from tokensieve.models import cached_load
    from tokensieve.run import generate

    net, tokenizer = cached_load(model)
    context = haystack(tokenizer, prompt_tokens)

    def run() -> tuple[float, object]:
        result = generate(model, context, "What is this text about?", "full", 1.0, max_new_tokens=1, chunk=chunk)
        return result.stats.prefill_s, result.token_ids

    aten, packed = compare(f"{model} prefill of {prompt_tokens} tokens in pieces of {chunk}", net, run, rounds)
    print(f"same first token: {aten == packed}")


def encoder(batch: int, tokens: int, rounds: int) -> None:
    from tokensieve.encoder.data import passages
    from tokensieve.encoder.measure import cached_encoder

    st = cached_encoder("minilm-l6")
    st.max_seq_length = tokens
    texts = passages(st.tokenizer, tokens, batch)

    def run() -> tuple[float, object]:
        start = time.perf_counter()
        with torch.inference_mode():
            embeddings = st.encode(texts, batch_size=batch, convert_to_tensor=True, show_progress_bar=False)
        return time.perf_counter() - start, embeddings.float()

    aten, packed = compare(f"minilm-l6, {batch} passages of {tokens} tokens", st, run, rounds)
    cosine = torch.nn.functional.cosine_similarity(aten, packed, dim=-1)
    print(f"largest cosine distance to aten's embeddings: {float((1 - cosine).max()):.2e}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[0] == "prefill":
        prefill(args[1], int(args[2]), int(args[3]), int(args[4]) if len(args) > 4 else 7)
    elif args[0] == "encoder":
        encoder(int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 7)
    else:
        raise SystemExit(f"unknown part '{args[0]}': prefill or encoder")
