from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.encoder.base import EncoderMethod, Seen, prune_lowest
from tokensieve.encoder.tokens import Tokens


@dataclass
class RandomPrune(EncoderMethod):
    """Random pruning, the floor every scorer must beat (a seeded generator, so runs repeat)."""

    name = "random_prune"
    paper = "baseline"
    seed: int = 0

    def reduce(self, tokens: Tokens, seen: Seen, remove: Tensor, layer: int, layers: int) -> Tokens:
        generator = torch.Generator().manual_seed(self.seed + layer)
        score = torch.rand(tokens.size.shape, generator=generator).to(tokens.size.device)
        return prune_lowest(tokens, score, remove)
