"""Budgets: how many cached tokens may stay, as a ratio of the prompt or an absolute count, per layer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tokensieve.errors import TokensieveError

Allocation = Literal["uniform", "pyramid"]


@dataclass(frozen=True)
class Budget:
    """`value` in (0, 1] is a ratio of the prompt length; an integer > 1 is a token count per layer."""

    value: float
    sinks: int = 4
    window: int = 32

    def __post_init__(self) -> None:
        if self.sinks < 0 or self.window < 0:
            raise TokensieveError("sinks and window must be >= 0")
        if self.is_ratio:
            if not 0 < self.value <= 1:
                raise TokensieveError(f"budget {self.value} is outside (0, 1]; use a ratio or a token count > 1")
        elif self.value != int(self.value):
            raise TokensieveError(f"budget {self.value} is not a ratio in (0, 1] nor a whole token count")
        elif self.value < self.sinks + self.window:
            raise TokensieveError(
                f"budget of {int(self.value)} tokens is below sinks + window = {self.sinks + self.window}"
            )

    @property
    def is_ratio(self) -> bool:
        return self.value <= 1

    @property
    def is_full(self) -> bool:
        return self.value == 1.0

    def tokens(self, n: int) -> int:
        """Tokens kept (or attended) out of `n`: ceil(ratio x n), or the token count; never more than `n`.

        Sinks and the recent window are charged to this number, not added to it (see `protect`)."""
        if self.is_full:
            return n
        keep = math.ceil(self.value * n) if self.is_ratio else int(self.value)
        return max(0, min(n, keep))

    def protect(self, keep: int) -> tuple[int, int]:
        """(sinks, window) protected inside a budget of `keep` tokens: a budget too small for both shrinks the
        window first, then the sinks, so the protected tokens never push the total past `keep`."""
        sinks = min(self.sinks, keep)
        return sinks, min(self.window, keep - sinks)


def parse_budget(text: str | float, sinks: int = 4, window: int = 32) -> Budget:
    """'0.25' -> ratio, '1024' -> tokens; one clear error for anything else."""
    try:
        value = float(text)
    except ValueError:
        raise TokensieveError(f"budget '{text}' is not a number") from None
    if math.isnan(value) or value <= 0:
        raise TokensieveError(f"budget {text} is outside (0, 1]; use a ratio or a token count > 1")
    return Budget(value, sinks=sinks, window=window)


def allocate(total: int, n_layers: int, kind: Allocation = "uniform", beta: float = 20.0,
             floor: int = 0) -> list[int]:
    """Split a per-layer average of `total` tokens across layers.

    uniform: every layer keeps `total`. pyramid (PyramidKV, arXiv 2406.02069): an arithmetic sequence that
    keeps most in the lowest layer and `total / beta`-ish in the top one, with the same average, and never
    below `floor` (the protected tokens).
    """
    if kind == "uniform" or n_layers == 1:
        return [total] * n_layers
    if kind != "pyramid":
        raise TokensieveError(f"unknown allocation '{kind}': use uniform or pyramid")
    top = max(floor, total // beta)
    bottom = 2 * total - top
    step = (bottom - top) / (n_layers - 1)
    sizes = [round(bottom - step * i) for i in range(n_layers)]
    sizes = [max(floor, s) for s in sizes]
    sizes[0] += total * n_layers - sum(sizes)  # rounding: keep the sum exact
    return sizes
