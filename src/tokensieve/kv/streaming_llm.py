from dataclasses import dataclass

from torch import Tensor

from tokensieve.core.policy import KVPolicy
from tokensieve.core.view import LayerView


@dataclass
class StreamingLLM(KVPolicy):
    """StreamingLLM (Xiao et al., arXiv 2309.17453): the attention-sink tokens plus the most recent ones.

    Evicts during decode by default (every 32 tokens), so a stream of any length keeps a bounded cache."""

    name = "streaming_llm"

    evict_every: int = 32

    def score(self, view: LayerView) -> Tensor:
        return view.positions.float()
