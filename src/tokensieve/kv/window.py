from dataclasses import dataclass

from torch import Tensor

from tokensieve.core.budget import Budget
from tokensieve.core.policy import KVPolicy
from tokensieve.core.view import LayerView


@dataclass
class Window(KVPolicy):
    """Sliding window (Longformer/Mistral-style local attention, arXiv 2004.05150): only the most recent tokens."""

    name = "window"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.budget = Budget(self.budget.value, sinks=0, window=self.budget.window)

    def score(self, view: LayerView) -> Tensor:
        return view.positions.float()
