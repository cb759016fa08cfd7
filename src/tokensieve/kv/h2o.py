from dataclasses import dataclass

from torch import Tensor

from tokensieve.core.policy import KVPolicy
from tokensieve.core.view import LayerView


@dataclass
class H2O(KVPolicy):
    """H2O heavy hitters (Zhang et al., arXiv 2306.14048): attention accumulated over every query so far.

    The running sum lives in the cache next to the tokens and grows with every prompt forward (`accumulate`), evicting
    or not, so with chunked prefill a token's score keeps growing across chunks and survives evictions aligned
    with it. Decode queries are added when a decode eviction (`evict_every`) scores them.
    """

    name = "h2o"

    def accumulates(self) -> bool:
        return True

    def accumulate(self, view: LayerView) -> None:
        mass = view.attention_mass().sum(2)
        running = view.state.get("h2o")
        view.state["h2o"] = mass if running is None else running + mass

    def score(self, view: LayerView) -> Tensor:
        return view.state["h2o"]
