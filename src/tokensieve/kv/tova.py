from dataclasses import dataclass

from torch import Tensor

from tokensieve.core.policy import KVPolicy
from tokensieve.core.view import LayerView


@dataclass
class TOVA(KVPolicy):
    """TOVA (Oren et al., arXiv 2401.06104): keep the tokens the newest query attends to most (head-averaged)."""

    name = "tova"

    def score(self, view: LayerView) -> Tensor:
        return view.attention_mass(last=1).mean(2)
