from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.policy import KVPolicy
from tokensieve.core.view import LayerView

_PRIME = 2_147_483_647  # 2^31 - 1: products of two residues fit in int64


@dataclass
class Random(KVPolicy):
    """Random eviction: the floor every scorer must beat. A token's score is a hash of (seed, layer, head, real
    position), so runs repeat and a sequence scores the same alone or inside a padded batch."""

    name = "random"

    seed: int = 0

    def score(self, view: LayerView) -> Tensor:
        real = view.positions if view.pads is None else view.positions - view.pads.view(-1, 1, 1)
        heads = torch.arange(view.positions.shape[1], device=real.device).view(1, -1, 1)
        x = (real + 1_000_003 * heads + 7919 * view.layer_idx + 104_729 * self.seed) % _PRIME
        x = (x * 48_271 + 11) % _PRIME  # Lehmer step, a squaring (non-linear), then another Lehmer step
        x = (x * x + 12_345) % _PRIME
        x = (x * 69_621 + 7) % _PRIME
        return x.float() / _PRIME
