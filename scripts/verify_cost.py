"""What a tree's wide forward costs, in one-token steps of the same path: `decode.cost.verification_cost` (the suffix
drafter's own probe) on a HumanEval prompt's cache, for three paths:
- `fp32`: the model as shipped (aten's products);
- `fp32 + packed`: the same, with products of 3 rows or more through prepacked oneDNN linears, as tree
  verification runs them with `packed_gemm`; one-token steps stay aten;
- `int8 + compiled product`: `--weights int8 --decode-kernel`.

    .venv/bin/python scripts/verify_cost.py MODEL [REPEATS]

Prints, per path, the cost of a chain forward of T tokens over that path's one-token step, and that step's time.
"""

from __future__ import annotations

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


def main(model: str, repeats: int) -> None:
    p = prompt("code", 20)
    for name, weights, packed, kernels in (("fp32", "fp32", False, False), ("fp32 + packed", "fp32", True, False),
                                           ("int8 + compiled product", "int8", False, True)):
        net, tokenizer = cached_load(model, weights=weights)
        ids = tokenizer(p.context + p.question, return_tensors="pt").input_ids
        linears = packed_linears(net) if packed else nullcontext()
        with torch.inference_mode(), apply(net, make("full"), [ids.shape[1]], decode_kernel=kernels) as session:
            cache = SieveCache(net.config)
            session.decode_room = max(SIZES)
            net(input_ids=ids, past_key_values=cache, use_cache=True)
            with linears:
                seconds = verification_cost(Verifier(net, cache, session), SIZES, repeats)
        costs = ", ".join(f"{t}: {s / seconds[1]:.2f}" for t, s in seconds.items())
        print(f"{model} {name}: {costs} (1 = {seconds[1] * 1e3:.1f} ms)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7)
