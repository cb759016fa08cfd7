"""How many rows each layer removes: a kept ratio (geometric per-layer fractions), ToMe's fixed r per layer, or
a per-layer list of fractions (a searched schedule, saved as JSON).

The kept ratio is the share of token-rows the model's sub-blocks process: the mean, over each layer's attention
block and MLP, of the rows entering it / the tokens in the input. It is what the linear layers' cost follows,
and what a run reports as `kept_ratio`, measured. Where a layer keeps its residual inside the attention block
(BERT's post-LN layers) rows are reduced between attention and MLP, as ToMe does, so every layer's MLP,
the last one's too, runs on fewer rows ("mid"); otherwise (pre-LN ViT) between layers, and the last layer's
output is not reduced ("end")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from tokensieve.errors import TokensieveError


def kept_ratio(fractions: list[float], mid: bool) -> float:
    """The kept ratio per-layer removal fractions give (one per layer; with `mid` False the last is unused)."""
    rows, total = 1.0, 0.0
    for i, f in enumerate(fractions):
        if not mid and i == len(fractions) - 1:
            f = 0.0
        total += rows  # the attention block
        rows *= 1.0 - f if mid else 1.0
        total += rows  # the MLP
        rows *= 1.0 if mid else 1.0 - f
    return total / (2 * len(fractions))


def geometric(keep: float, layers: int, mid: bool) -> list[float]:
    """The constant per-layer fraction whose kept ratio is `keep` (bisection)."""
    if not 0 < keep <= 1:
        raise TokensieveError(f"--keep {keep} is outside (0, 1]")
    floor = kept_ratio([1.0] * layers, mid)
    if keep < floor + 1e-6:
        raise TokensieveError(f"--keep {keep} is too small: the first of {layers} layers sees every token, so the "
                              f"kept ratio is above {floor:.3f}")
    lo, hi = 0.0, 1.0
    for _ in range(60):
        f = (lo + hi) / 2
        lo, hi = (f, hi) if kept_ratio([f] * layers, mid) > keep else (lo, f)
    return [hi] * layers if mid else [hi] * (layers - 1) + [0.0]


@dataclass
class Schedule:
    """Per-layer removal: fractions of each sequence's rows (rounded down), or a fixed count r."""

    fractions: list[float] | None = None
    r: int | None = None
    mid: bool = True  # rows go between attention and MLP (see the module docstring)

    @classmethod
    def build(cls, layers: int, mid: bool, keep: float | None = None, r: int | None = None,
              path: str | Path | None = None) -> Schedule:
        given = [x is not None for x in (keep, r, path)]
        if sum(given) > 1:
            raise TokensieveError("give one of --keep, --r and --schedule")
        if path is not None:
            return cls.load(path, layers, mid)
        if r is not None:
            if r < 0:
                raise TokensieveError(f"--r {r} must be >= 0")
            return cls(r=r, mid=mid)
        return cls(fractions=geometric(1.0 if keep is None else keep, layers, mid), mid=mid)

    @classmethod
    def load(cls, path: str | Path, layers: int, mid: bool) -> Schedule:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            fractions = [float(f) for f in data["fractions"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise TokensieveError(f"schedule {path} is not a tokensieve schedule JSON: {e}") from None
        if len(fractions) != layers or not all(0 <= f < 1 for f in fractions):
            raise TokensieveError(f"schedule {path} needs {layers} fractions in [0, 1), one per layer")
        return cls(fractions=fractions, mid=mid)

    def save(self, path: str | Path, **about) -> None:
        Path(path).write_text(json.dumps({**about, "fractions": self.fractions, "kept_ratio": self.kept_ratio()},
                                         indent=2) + "\n", encoding="utf-8")

    def kept_ratio(self) -> float | None:
        return None if self.fractions is None else kept_ratio(self.fractions, self.mid)

    @property
    def is_noop(self) -> bool:
        return (self.r == 0) if self.r is not None else not any(self.fractions or [])

    def remove(self, layer: int, layers: int, counts: Tensor) -> Tensor:
        """Rows to remove from each sequence after `layer` (0-based), given its real row counts [batch]."""
        if layer >= layers - 1 and not self.mid:
            return torch.zeros_like(counts)
        if self.r is not None:
            return torch.full_like(counts, self.r)
        return torch.floor(counts.to(torch.float64) * self.fractions[layer]).to(counts.dtype)
