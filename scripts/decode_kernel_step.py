"""The server's full-batch decode step on four paths, interleaved on the same caches: plain, with the CPU decode
kernel (`core.decode_kernel`, and a policy's own compiled step: Quest's), with prepacked oneDNN linears
(`core.gemm`), and with both. BATCH prompts of TOKENS
tokens are prefilled once per policy, then blocks of 8 decode steps cycle through the paths. Per round, the ratio of
the plain block's median step time to each path's; the geometric mean over rounds with a bootstrap 95 % interval.
The numbers in docs/DECODE.md come from (run from scripts/):

    ../.venv/bin/python decode_kernel_step.py smollm2-135m 8 4096 full,snapkv:0.125
    ../.venv/bin/python decode_kernel_step.py smollm2-135m 8 4096 full,quest@int4:0.125,quest:0.125
"""

from __future__ import annotations

import statistics
import sys

import torch

from tokensieve.bench.serving import Method, prompts_for
from tokensieve.models import cached_load
from tokensieve.serve.engine import Engine, Request

BLOCK, ROUNDS = 8, 8
PATHS = {"plain": (False, False), "+kernel": (True, False), "+gemm": (False, True), "+kernel+gemm": (True, True)}


def main(model: str, batch: int, tokens: int, methods: str) -> None:
    from decode_packed_gemm import geometric_mean_interval

    net, tokenizer = cached_load(model)
    rows = [tokenizer(p).input_ids for p in prompts_for(tokenizer, tokens, batch)]
    print(f"{model}, {batch} × {len(rows[0])} tokens, {torch.get_num_threads()} threads, {ROUNDS} rounds of "
          f"{BLOCK} steps per path")
    for method in map(Method.parse, methods.split(",")):
        engine = Engine(net, tokenizer, max_batch=batch, max_queue=batch, decode_kernel=True, packed_gemm=True)
        engine.hold_decode = True
        for row in rows:
            engine.submit(Request(row, len(PATHS) * BLOCK * ROUNDS + 4, method.policy, method.budget,
                                  ignore_eos=True, kv_dtype=method.kv_dtype), lambda event: None)
        while engine.waiting or any(not s.decoding for s in engine.running):
            engine.step()
        engine.hold_decode = False
        engine.step()  # the first step after the prompts: warm
        medians = {path: [] for path in PATHS}
        for _ in range(ROUNDS):
            for path, (kernel, gemm) in PATHS.items():
                engine.dense.enabled, engine.packed.packed_gemm = kernel, gemm
                for seq in engine.running:  # a policy's own compiled step (Quest's) follows the same switch
                    seq.session.kernels = kernel
                since = len(engine.step_log)
                for _ in range(BLOCK):
                    engine.step()
                assert all(n == batch for n, _, _ in engine.step_log[since:]), "a step left the full batch"
                medians[path].append(statistics.median(s for _, _, s in engine.step_log[since:]))
        for path in PATHS:
            ratio, low, high = geometric_mean_interval([a / b for a, b in zip(medians["plain"], medians[path],
                                                                               strict=True)])
            print(f"{method.label}{path if path != 'plain' else ''}: median step "
                  f"{1000 * statistics.median(medians[path]):.1f} ms, {ratio:.2f}× [{low:.2f}–{high:.2f}] plain's "
                  "speed", flush=True)
        print(f"({engine.dense.calls} kernel calls)", flush=True)
        engine.run_until_idle()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
