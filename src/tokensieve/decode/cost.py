"""The measured price of verification: seconds of one tree forward of T tokens against a one-token step, on the
real cache of a real prompt. With the tokens a drafter yields per step it bounds the speed-up:
tokens per step / (cost(T) / cost(1))."""

from __future__ import annotations

import statistics
import weakref

import torch

from tokensieve.core.memory import now
from tokensieve.decode.tree import DraftTree
from tokensieve.decode.verify import Verifier


def verification_cost(verifier: Verifier, sizes: list[int], repeats: int = 5, token: int = 0) -> dict[int, float]:
    """Median seconds of a chain forward of each size in `sizes` (1 = a plain greedy step), interleaved over
    `repeats` rounds so that machine noise hits every size alike; the cache is rolled back after each."""
    times: dict[int, list[float]] = {size: [] for size in sizes}
    device = next(iter(verifier.layers.values())).keys.device
    for _ in range(repeats + 1):  # the first round warms up
        for size in sizes:
            tree = DraftTree.chain(size - 1)
            tokens = torch.full((size,), token, dtype=torch.long, device=device)
            start = now()
            verifier.forward(tree, tokens)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[size].append(now() - start)
            verifier.rollback([0], size)
            verifier.rewind(1)
    return {size: statistics.median(t[1:]) for size, t in times.items()}


CURVE_SIZES = (1, 2, 4, 8, 13, 16, 24, 32)  # where a drafter's cost curve is measured (linear in between)
_CURVES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(policy, packed): seconds by size}


def measured_cost(verifier: Verifier, key: tuple, repeats: int = 3) -> dict[int, float]:
    """`verification_cost` at `CURVE_SIZES` on this verifier's cache, measured once per model and `key` (what else
    changes the price: the policy, the linears' path) and kept while the model lives."""
    known = _CURVES.setdefault(verifier.model, {})
    if key not in known:
        known[key] = verification_cost(verifier, list(CURVE_SIZES), repeats)
    return known[key]
