"""Active and dormant heads (Guo et al., "Active-Dormant Attention Heads", arXiv 2410.13835;
Sandoval-Segura et al., "Using Attention Sinks to Identify and Evaluate Dormant Heads", arXiv 2504.03889).

A head is dormant on a text when nearly all of its attention goes to the sink tokens (it writes ~nothing: the
sinks' values are small), and active otherwise. The same head can be dormant on one domain and active on
another, so `compare_heads` shows which heads switch between two inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from tokensieve.diagnose.probe import LayerAttention


@dataclass
class HeadStat:
    layer: int
    head: int
    entropy: float  # mean attention entropy per query, nats
    sink_fraction: float  # mean share of each query's attention that goes to sink tokens
    dormant: bool

    def to_dict(self) -> dict:
        return asdict(self)


def head_stats(layers: list[LayerAttention], sink_positions: list[int], dormant_at: float = 0.8) -> list[HeadStat]:
    stats = []
    for idx, att in enumerate(layers):
        queries = float(att.mass[0].sum())  # each query's attention sums to 1: total mass = number of queries
        on_sinks = att.mass[:, sink_positions].sum(-1) / queries if sink_positions else torch.zeros(len(att.mass))
        for h in range(att.mass.shape[0]):
            frac = float(on_sinks[h])
            stats.append(HeadStat(idx, h, round(float(att.entropy[h]), 4), round(frac, 4), frac >= dormant_at))
    return stats


def dormant_per_layer(heads: list[HeadStat], n_layers: int) -> list[int]:
    counts = [0] * n_layers
    for h in heads:
        counts[h.layer] += h.dormant
    return counts


def compare_heads(a: list[HeadStat], b: list[HeadStat]) -> dict:
    """Heads whose state differs between two inputs (a -> b), with the sink fractions behind each switch."""
    if [(h.layer, h.head) for h in a] != [(h.layer, h.head) for h in b]:
        raise ValueError("the two head lists come from different models")
    switched = [
        {"layer": x.layer, "head": x.head, "from": "dormant" if x.dormant else "active",
         "to": "dormant" if y.dormant else "active", "sink_fraction": [x.sink_fraction, y.sink_fraction]}
        for x, y in zip(a, b, strict=True) if x.dormant != y.dormant
    ]
    return {
        "dormant": [sum(h.dormant for h in a), sum(h.dormant for h in b)],
        "to_dormant": sum(s["to"] == "dormant" for s in switched),
        "to_active": sum(s["to"] == "active" for s in switched),
        "switched": switched,
    }
