"""Schedule search, DiffRate-style but without training (DiffRate: Chen et al., "DiffRate: Differentiable
Compression Rate for Efficient Vision Transformers", ICCV 2023, arXiv 2305.17997, learns per-layer rates by
gradient; here a greedy search over the same space with the frozen model): per-layer removal fractions that
keep the mean cosine to the plain model's embeddings highest on a small calibration set, at a kept ratio no
larger than the target."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tokensieve.encoder.run import encoder_layers, merge, residual_inside_attention
from tokensieve.encoder.schedule import Schedule, geometric, kept_ratio
from tokensieve.errors import TokensieveError


def fit(fractions: list[float], keep: float, mid: bool) -> list[float]:
    """Scale `fractions` (bisection on one factor, each capped below 1) so their kept ratio is `keep`."""
    lo, hi = 0.0, 1.0 / max(max(fractions), 1e-9)
    for _ in range(50):
        s = (lo + hi) / 2
        lo, hi = (s, hi) if kept_ratio([min(f * s, 0.95) for f in fractions], mid) > keep else (lo, s)
    return [round(min(f * hi, 0.95), 4) for f in fractions]


@dataclass
class Searched:
    schedule: Schedule
    cosine: float  # mean cosine to full on the calibration texts
    start_cosine: float  # the geometric schedule's, for comparison
    evaluations: int


def search(st, method: str, keep: float, texts: list[str], steps: int = 24, move: float = 0.5,
           batch: int = 32) -> Searched:
    """Greedy coordinate search from the geometric schedule: move removal between a pair of layers (the kept
    ratio is restored by rescaling), keep the move if the calibration cosine rises; the step shrinks when no
    move helps. `steps` evaluations at most after the start."""
    net = st[0].auto_model
    layers = encoder_layers(net)
    mid = all(residual_inside_attention(layer) for layer in layers)
    count = len(layers)
    if not texts:
        raise TokensieveError("schedule search needs calibration texts")
    with torch.inference_mode():
        reference = st.encode(texts, batch_size=batch, convert_to_tensor=True, show_progress_bar=False)

    def score(fractions: list[float]) -> float:
        with torch.inference_mode(), merge(st, method, schedule=Schedule(fractions=fractions, mid=mid)):
            got = st.encode(texts, batch_size=batch, convert_to_tensor=True, show_progress_bar=False)
        return float(torch.nn.functional.cosine_similarity(got, reference).mean())

    best = geometric(keep, count, mid)
    best_score = start = score(best)
    evaluations = 0
    usable = count if mid else count - 1
    while evaluations < steps and move > 0.02:
        improved = False
        for src in range(usable):
            for dst in range(usable):
                if src == dst or evaluations >= steps:
                    continue
                trial = list(best)
                shift = trial[src] * move
                trial[src] -= shift
                trial[dst] += shift
                trial = fit(trial, keep, mid)
                evaluations += 1
                value = score(trial)
                if value > best_score:
                    best, best_score, improved = trial, value, True
        if not improved:
            move /= 2
    return Searched(Schedule(fractions=best, mid=mid), best_score, start, evaluations)
