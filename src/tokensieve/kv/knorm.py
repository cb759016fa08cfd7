from dataclasses import dataclass

from torch import Tensor

from tokensieve.core.policy import KVPolicy
from tokensieve.core.view import LayerView


@dataclass
class KNorm(KVPolicy):
    """K-norm (Devoto et al., arXiv 2406.11430): keys with a small L2 norm draw the most attention; keep them."""

    name = "knorm"

    def score(self, view: LayerView) -> Tensor:
        return -view.keys.float().norm(dim=-1)
