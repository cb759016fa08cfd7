from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.budget import Budget
from tokensieve.core.policy import KVPolicy
from tokensieve.core.view import LayerView


@dataclass
class Full(KVPolicy):
    """The unmodified model: keeps every token whatever budget it is given (the baseline of every table)."""

    name = "full"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.budget = Budget(1.0, self.budget.sinks, self.budget.window)

    def score(self, view: LayerView) -> Tensor:
        return torch.zeros_like(view.positions, dtype=torch.float32)
