"""Exact-ratio selection: keep the best-scored units so the *re-tokenised* output hits a token target.

Selecting k tokens does not give a k-token text: joined fragments merge or split differently when the target
tokenizer reads them again (the drift behind "the requested ratio is often not achieved"). So: pick units by
score, join, re-tokenise, and add or drop units greedily (best dropped / worst kept first) until the count is
within tolerance; the closest result wins if the loop runs out of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from tokensieve.prompt.units import Units, count

PROTECT = 1e9  # a score at or above this is never dropped


@dataclass(frozen=True)
class Fit:
    text: str
    tokens: int
    kept_units: int
    steps: int


def fit(tokenizer, units: Units, scores: Tensor, target: int, tolerance: int = 0, max_steps: int = 40) -> Fit:
    """Keep units by descending `scores` until the re-tokenised text has `target` (+- tolerance) tokens."""
    sizes = units.sizes
    order = sorted(range(len(units)), key=lambda u: (-float(scores[u]), u))
    kept: set[int] = set()
    total = 0
    for u in order:
        if total + sizes[u] <= target or float(scores[u]) >= PROTECT:
            kept.add(u)
            total += sizes[u]
    rank = {u: r for r, u in enumerate(order)}
    best: Fit | None = None
    step = 0
    for step in range(max_steps):
        text = units.join(list(kept))
        n = count(tokenizer, text)
        if best is None or abs(n - target) < abs(best.tokens - target):
            best = Fit(text, n, len(kept), step)
        drift = n - target
        if abs(drift) <= tolerance:
            break
        cautious = step >= max_steps // 2  # late steps move one unit at a time to stop oscillating
        if drift > 0:
            removable = sorted((u for u in kept if float(scores[u]) < PROTECT), key=lambda u: -rank[u])
            if not removable:
                break
            _move(removable, kept.discard, drift, sizes, cautious)
        else:
            addable = sorted((u for u in range(len(units)) if u not in kept), key=lambda u: rank[u])
            if not addable:
                break
            _move(addable, kept.add, -drift, sizes, cautious)
    return Fit(best.text, best.tokens, best.kept_units, step)


def _move(candidates: list[int], act, tokens: int, sizes: list[int], one: bool) -> None:
    moved = 0
    for u in candidates:
        act(u)
        moved += sizes[u]
        if one or moved >= tokens:
            return
