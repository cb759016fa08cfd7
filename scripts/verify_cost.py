"""What a tree's wide forward costs, in one-token steps: `decode.cost.verification_cost` (the suffix drafter's own
probe) on a HumanEval prompt's cache, for three paths:
- `fp32`: the model as shipped (aten's products);
- `fp32 + packed`: the same, with products of 3 rows or more through prepacked oneDNN linears, as tree
  verification runs them with `packed_gemm`; one-token steps stay aten;
- `int8 + compiled product`: `--weights int8 --decode-kernel`.

    .venv/bin/python scripts/verify_cost.py MODEL [ROUNDS]

The two fp32 paths alternate on the same cache, one probe each per round (ROUNDS rounds, medians), so both are in
units of the same greedy step. int8 is measured after them on its own model; it is given in its own one-token
steps and in the fp32 greedy step measured just before it.
"""

from __future__ import annotations

import statistics
import sys
from contextlib import nullcontext

import torch

from tokensieve.core.cache import SieveCache
from tokensieve.core.gemm import packed_linears
from tokensieve.core.hooks import apply
from tokensieve.decode.cost import verification_cost
from tokensieve.decode.verify import Verifier
from tokensieve.decode.workloads import prompt
from tokensieve.methods import make
from tokensieve.models import cached_load

SIZES = [1, 2, 3, 4, 6, 8, 13, 16]


def curves(model: str, weights: str, paths: list[bool], rounds: int) -> list[dict[int, float]]:
    """Median seconds per size for each path (False: plain, True: packed linears), alternating each round."""
    net, tokenizer = cached_load(model, weights=weights)
    p = prompt("code", 20)
    ids = tokenizer(p.context + p.question, return_tensors="pt").input_ids
    seconds: list[dict[int, list[float]]] = [{size: [] for size in SIZES} for _ in paths]
    kernels = weights == "int8"
    with torch.inference_mode(), apply(net, make("full"), [ids.shape[1]], decode_kernel=kernels) as session:
        cache = SieveCache(net.config)
        session.decode_room = max(SIZES)
        net(input_ids=ids, past_key_values=cache, use_cache=True)
        verifier = Verifier(net, cache, session)
        for _ in range(rounds):
            for index, packed in enumerate(paths):
                with packed_linears(net) if packed else nullcontext():
                    for size, spent in verification_cost(verifier, SIZES, repeats=1).items():
                        seconds[index][size].append(spent)
    return [{size: statistics.median(times) for size, times in path.items()} for path in seconds]


def show(model: str, name: str, seconds: dict[int, float], greedy_step: float) -> None:
    own = ", ".join(f"{t}: {s / seconds[1]:.2f}" for t, s in seconds.items())
    fp32 = ", ".join(f"{t}: {s / greedy_step:.2f}" for t, s in seconds.items())
    print(f"{model} {name} (1 = {seconds[1] * 1e3:.1f} ms)\n  in its own one-token steps: {own}\n"
          f"  in fp32 greedy steps: {fp32}", flush=True)


def main(model: str, rounds: int) -> None:
    plain, packed = curves(model, "fp32", [False, True], rounds)
    show(model, "fp32", plain, plain[1])
    show(model, "fp32 + packed", packed, plain[1])
    (int8,) = curves(model, "int8", [False], rounds)
    show(model, "int8 + compiled product", int8, plain[1])


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7)
