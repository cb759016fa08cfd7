"""The policy base classes and the registry that the API, CLI and bench share."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field, fields
from typing import ClassVar

from torch import Tensor

from tokensieve.core.budget import Allocation, Budget, allocate
from tokensieve.core.rope import full_attention_inv_freq
from tokensieve.core.select import protected, topk_keep
from tokensieve.core.view import LayerView
from tokensieve.errors import TokensieveError


class Registry(MutableMapping):
    """Policy name -> class, built from `tokensieve.methods.METHODS` on first use (tests may add entries)."""

    def __init__(self) -> None:
        self._table: dict[str, type[Policy]] | None = None

    def _methods(self) -> dict[str, type[Policy]]:
        if self._table is None:
            from tokensieve.methods import METHODS

            self._table = {cls.name: cls for cls in METHODS}
        return self._table

    def __getitem__(self, name: str) -> type[Policy]:
        return self._methods()[name]

    def __setitem__(self, name: str, cls: type[Policy]) -> None:
        self._methods()[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._methods()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._methods())

    def __len__(self) -> int:
        return len(self._methods())


REGISTRY = Registry()


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

    def prepare(self, session, model) -> None:
        """Called by apply() before the first forward: a policy that needs model-specific tables builds them
        here, into `session.prepared` (never inside the forward pass). Nothing by default."""


@dataclass
class KVPolicy(Policy):
    """Scores cached tokens at each compression point and keeps the best `budget` per layer and KV head.

    Sinks and the recent window are always kept and charged to the budget; everything else competes on
    `score()`. Subclasses override `score(view) -> [batch, kv_heads, stored]` (higher = keep) and may set
    `allocation`. `evict_every` N > 0 also evicts during decode: whenever a layer holds capacity + N tokens it is
    brought back to capacity (kvpress's DecodingPress does the same), so a long generation stays bounded.
    `positions="rolling"` re-rotates kept keys to their position inside the cache (StreamingLLM's position
    shift, kvpress's KeyRerotationPress), so a stream past the trained context never sees unseen positions.
    """

    def prepare(self, session, model) -> None:
        if self.positions == "rolling":
            session.rope = full_attention_inv_freq(model, model.config.get_text_config().head_dim)

    allocation: Allocation = "uniform"
    evict_every: int = 0
    positions: str = "true"  # "rolling": keys re-rotated to their slot in the cache after every eviction

    def __post_init__(self) -> None:
        if self.evict_every < 0:
            raise TokensieveError(f"evict_every must be >= 0 (0 = off), got {self.evict_every}")
        if self.positions not in ("true", "rolling"):
            raise TokensieveError(f"positions must be 'true' or 'rolling', got {self.positions!r}")

    def accumulate(self, view: LayerView) -> None:
        """Called with every prompt forward's queries (and with the buffered decode queries before a decode
        eviction), evicting or not: a scorer that accumulates over all queries (H2O) does it here."""

    def score(self, view: LayerView) -> Tensor:
        raise NotImplementedError

    def capacities(self, prompt_tokens: int, n_layers: int) -> list[int]:
        keep = self.budget.tokens(prompt_tokens)
        return allocate(keep, n_layers, self.allocation, floor=sum(self.budget.protect(keep)))

    def select(self, view: LayerView, capacity: int | list[int]) -> Tensor:
        """Indices [batch, kv_heads, max(capacity)] of the tokens that stay, sorted by position; `capacity` is
        one count or one per sequence (a shorter sequence fills its row with its own padding slots)."""
        caps = [capacity] * view.keys.shape[0] if isinstance(capacity, int) else list(capacity)
        guard = [self.budget.protect(c) for c in caps]
        keep = protected(view.positions, view.seen, [g[0] for g in guard], [g[1] for g in guard], view.pads)
        return topk_keep(self.score(view), caps, keep, view.valid)


@dataclass
class DynamicPolicy(Policy):
    """Nothing is evicted: the policy attends each query to its own selection of the cache (`attend`)."""

    def attend(self, session, module, query: Tensor, key: Tensor, value: Tensor, attention_mask, **kwargs):
        raise NotImplementedError
