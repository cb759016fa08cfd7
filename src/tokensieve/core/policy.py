"""The policy base classes and the registry that the API, CLI and bench share."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from torch import Tensor

from tokensieve.core.budget import Allocation, Budget, allocate
from tokensieve.core.select import protected, topk_keep
from tokensieve.core.view import LayerView
from tokensieve.errors import TokensieveError

REGISTRY: dict[str, type[Policy]] = {}


def register(name: str):
    def decorate(cls: type[Policy]) -> type[Policy]:
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return decorate


def make(name: str, budget: Budget | float = 1.0, **options) -> Policy:
    """Build a registered policy by name; unknown names and options fail with one clear line."""
    if name not in REGISTRY:
        raise TokensieveError(f"unknown policy '{name}': choose from {', '.join(sorted(REGISTRY))}")
    cls = REGISTRY[name]
    known = {f.name for f in fields(cls)}
    unknown = set(options) - known
    if unknown:
        raise TokensieveError(f"policy '{name}' has no option {', '.join(sorted(unknown))}")
    if not isinstance(budget, Budget):
        budget = Budget(float(budget))
    return cls(budget=budget, **options)


def parse_options(pairs: list[str]) -> dict:
    """['observe=64', 'sparse_prefill=true'] -> {'observe': 64, 'sparse_prefill': True} (JSON values, else str)."""
    import json

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TokensieveError(f"option '{pair}' is not key=value")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


@dataclass
class Policy:
    """A method at one stage: subclasses say how tokens are scored; shared parts do the rest."""

    name: ClassVar[str] = "policy"
    budget: Budget = field(default_factory=lambda: Budget(1.0))


@dataclass
class KVPolicy(Policy):
    """Scores cached tokens at each compression point and keeps the best `budget` per layer and KV head.

    Sinks and the recent window are always kept; everything else competes on `score()`. Subclasses override
    `score(view) -> [batch, kv_heads, stored]` (higher = keep) and may set `allocation`.
    """

    allocation: Allocation = "uniform"

    def score(self, view: LayerView) -> Tensor:
        raise NotImplementedError

    def capacities(self, prompt_tokens: int, n_layers: int) -> list[int]:
        keep = self.budget.tokens(prompt_tokens)
        floor = min(keep, self.budget.sinks + self.budget.window)
        return allocate(keep, n_layers, self.allocation, floor=floor)

    def select(self, view: LayerView, capacity: int) -> Tensor:
        """Indices [batch, kv_heads, capacity] of the tokens that stay, sorted by position."""
        scores = self.score(view)
        keep = protected(view.positions, view.seen, self.budget.sinks, self.budget.window)
        return topk_keep(scores, capacity, keep)
