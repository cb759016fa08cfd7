"""FLOPs estimate of one prompt forward of n tokens, dense or under a token-skipping plan.

Per layer: 2 flops per multiply-add of the projections and the gated MLP for every token the layer carries, and
4 x heads x head_dim per causal (query, key) pair among them; plus the probes (the key projection of every
carried token, the last `probe` queries' projections and scores, the rank-r MLP proxy) and the LM head for the
last token. Sparse prefill (fastv+hisa) is charged its budget's share of the pairs. Embedding lookups and
norms are left out. An estimate, printed next to the measured time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tokensieve.bench.cost import Shape
from tokensieve.prefill.skip import Stage, TokenSkip
from tokensieve.prefill.spts import SPTS
from tokensieve.sparse.base import SelectPolicy


@dataclass(frozen=True)
class Dims:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    inter: int
    vocab: int

    @classmethod
    def of(cls, config) -> Dims:
        shape, t = Shape.of(config), config.get_text_config()
        return cls(shape.layers, t.hidden_size, shape.q_heads, t.num_key_value_heads, shape.head_dim,
                   t.intermediate_size, t.vocab_size)

    def layer(self, tokens: int, attended: float = 1.0) -> float:
        """One layer over `tokens`, each query attending `attended` of its causal keys (sparse prefill)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        linear = 2 * tokens * (self.hidden * (2 * q + 2 * kv) + 3 * self.hidden * self.inter)
        return linear + 4 * q * attended * tokens * (tokens + 1) / 2

    def attention_probe(self, tokens: int, queries: int) -> float:
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return 2 * (tokens * self.hidden * kv + queries * self.hidden * q + queries * tokens * q)

    def ffn_probe(self, tokens: int, rank: int) -> float:
        return 2 * tokens * rank * 3 * (self.hidden + self.inter)


def carried(stages: list[Stage], layers: int, n: int) -> list[int]:
    """Tokens entering each layer under `stages`."""
    out, t = [], n
    by_layer = {s.layer: s for s in stages}
    for i in range(layers):
        if i in by_layer:
            t = min(t, max(1, math.ceil(by_layer[i].keep * n)))
        out.append(t)
    return out


def prefill_flops(config, n: int, policy=None) -> float:
    """Estimated flops of prefilling n tokens in one forward, dense (`policy` None or not skipping) or skipping."""
    dims = Dims.of(config)
    head = 2 * dims.hidden * dims.vocab
    skipper = policy.skipper() if policy is not None else None
    if not isinstance(skipper, TokenSkip):
        return sum(dims.layer(n) for _ in range(dims.layers)) + head
    attender = policy.attender()
    attended = attender.budget.value if isinstance(attender, SelectPolicy) and attender.sparse_prefill else 1.0
    policy = skipper
    if policy.name == "gemfilter":
        from tokensieve.prefill.skip import layer_index

        stop = layer_index(policy.layer, dims.layers)
        kept = math.ceil(policy.budget.value * n)
        return (stop * dims.layer(n) + dims.attention_probe(n, policy.probe)
                + dims.layers * dims.layer(kept) + head)
    stages = policy.stages(dims.layers)
    tokens = carried(stages, dims.layers, n)
    total = sum(dims.layer(t, attended) for t in tokens) + head
    for stage in stages:
        t = tokens[stage.probe]
        total += dims.attention_probe(t, policy.probe)
        if isinstance(policy, SPTS) and policy.ltp_weight:
            total += dims.ffn_probe(t, policy.ltp_rank)
    return total
