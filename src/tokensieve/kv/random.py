from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.policy import KVPolicy, register
from tokensieve.core.view import LayerView


@register("random")
@dataclass
class Random(KVPolicy):
    """Random eviction: the floor every scorer must beat (seeded, so runs repeat)."""

    seed: int = 0

    def score(self, view: LayerView) -> Tensor:
        generator = torch.Generator(device=view.keys.device).manual_seed(self.seed + 7919 * view.layer_idx)
        return torch.rand(view.positions.shape, generator=generator, device=view.keys.device)
