"""The server's full-batch decode step on four paths, interleaved on the same caches: plain, with the CPU decode
kernel (`core.decode_kernel`, and a policy's own compiled step: Quest's), with prepacked oneDNN linears
(`core.gemm`), and with both. BATCH prompts of TOKENS tokens are prefilled once per policy, each policy in its own
engine; then every round runs a block of 8 decode steps for every (policy, path) pair in turn, so the policies are
interleaved with each other as well as the paths. Per round, the ratio of a reference block's median step time to
each block's; the geometric mean over rounds with a bootstrap 95 % interval. Two references are reported: the
policy's own plain path, and the first policy's plain path (usually `full`: the old server's step).
The numbers in docs/DECODE.md and docs/KV-STORE.md come from (run from scripts/):

    ../.venv/bin/python decode_kernel_step.py smollm2-135m 8 4096 full,snapkv:0.125
    ../.venv/bin/python decode_kernel_step.py smollm2-135m 8 4096 full,quest@int4:0.125 [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys

import torch

from tokensieve.bench.serving import Method, prompts_for
from tokensieve.models import cached_load
from tokensieve.serve.engine import Engine, Request

BLOCK = 8
PATHS = {"plain": (False, False), "+kernel": (True, False), "+gemm": (False, True), "+kernel+gemm": (True, True)}


def prefilled(net, tokenizer, rows: list[list[int]], method: Method, steps: int) -> Engine:
    """An engine holding every prompt prefilled under `method`, before its first decode step."""
    engine = Engine(net, tokenizer, max_batch=len(rows), max_queue=len(rows), decode_kernel=True, packed_gemm=True)
    engine.hold_decode = True
    for row in rows:
        engine.submit(Request(row, steps + 4, method.policy, method.budget, ignore_eos=True,
                              kv_dtype=method.kv_dtype), lambda event: None)
    while engine.waiting or any(not s.decoding for s in engine.running):
        engine.step()
    engine.hold_decode = False
    engine.step()  # the first step after the prompts: warm
    return engine


def block_median(engine: Engine, kernel: bool, gemm: bool) -> float:
    """The median step time of BLOCK full-batch decode steps on one path."""
    engine.dense.enabled, engine.packed.packed_gemm = kernel, gemm
    for seq in engine.running:  # a policy's own compiled step (Quest's) follows the same switch
        seq.session.kernels = kernel
    since = len(engine.step_log)
    for _ in range(BLOCK):
        engine.step()
    assert all(n == len(engine.running) for n, _, _ in engine.step_log[since:]), "a step left the full batch"
    return statistics.median(s for _, _, s in engine.step_log[since:])


def main(model: str, batch: int, tokens: int, methods: str, rounds: int = 8) -> None:
    from decode_packed_gemm import geometric_mean_interval

    net, tokenizer = cached_load(model)
    rows = [tokenizer(p).input_ids for p in prompts_for(tokenizer, tokens, batch)]
    print(f"{model}, {batch} × {len(rows[0])} tokens, {torch.get_num_threads()} threads, {rounds} rounds of "
          f"{BLOCK} steps per policy and path, all interleaved")
    parsed = [Method.parse(m) for m in methods.split(",")]
    engines = [prefilled(net, tokenizer, rows, m, len(PATHS) * BLOCK * rounds) for m in parsed]
    medians = {(m.label, path): [] for m in parsed for path in PATHS}
    for _ in range(rounds):
        for method, engine in zip(parsed, engines, strict=True):
            for path, (kernel, gemm) in PATHS.items():
                medians[method.label, path].append(block_median(engine, kernel, gemm))
    reference = medians[parsed[0].label, "plain"]
    for method, engine in zip(parsed, engines, strict=True):
        own = medians[method.label, "plain"]
        for path in PATHS:
            times = medians[method.label, path]
            mine = geometric_mean_interval([a / b for a, b in zip(own, times, strict=True)])
            first = geometric_mean_interval([a / b for a, b in zip(reference, times, strict=True)])
            print(f"{method.label}{path if path != 'plain' else ''}: median step "
                  f"{1000 * statistics.median(times):.1f} ms; {mine[0]:.2f}× [{mine[1]:.2f}–{mine[2]:.2f}] its plain "
                  f"path's speed; {first[0]:.2f}× [{first[1]:.2f}–{first[2]:.2f}] plain {parsed[0].label}'s",
                  flush=True)
        print(f"({engine.dense.calls} kernel calls)", flush=True)
        engine.run_until_idle()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], *map(int, sys.argv[5:6]))
