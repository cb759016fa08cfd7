from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from tokensieve.encoder.base import EncoderMethod, Seen, prune_lowest
from tokensieve.encoder.tokens import Tokens


@dataclass
class PoolAttention(EncoderMethod):
    """[CLS]/pooling attention pruning (after "[CLS] Attention is All You Need for Training-Free Visual Token
    Pruning", VTC-CLS, Zhang et al., arXiv 2412.01818; EViT's class-attention scoring, arXiv 2202.07800): drop
    the rows the pooled output attends to least. For a CLS-pooled model that is the class token's query; for a
    mean-pooled sentence encoder, the size-weighted mean query of the real rows."""

    name = "pool_attention"
    paper = "arXiv 2412.01818"
    needs = frozenset({"pool"})

    def reduce(self, tokens: Tokens, seen: Seen, remove: Tensor, layer: int, layers: int) -> Tokens:
        return prune_lowest(tokens, seen.pool, remove)
