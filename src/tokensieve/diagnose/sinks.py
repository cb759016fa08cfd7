"""Attention sinks: tokens that draw a large share of the attention of the queries that can see them.

Primary sinks (StreamingLLM, Xiao et al., arXiv 2309.17453; "When Attention Sink Emerges", Gu et al.,
arXiv 2410.10781) sit at the first positions (BOS, or the first text token when the tokenizer adds none) and
persist to the top of the network. Secondary sinks ("On the Existence and Behavior of Secondary Attention
Sinks", Wong et al., arXiv 2512.22213) are later, semantically weak tokens that become sinks in a band of
middle layers and fade again, drawing a smaller but significant share.

The sink score of token j in layer l is the attention it receives, averaged over the queries that can see it
(causal and sliding-window visibility) and over the layer's heads. Tokens seen by fewer than `min_queries`
queries are not candidates: the last tokens of a text draw local attention from their few neighbours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from tokensieve.diagnose.probe import LayerAttention


@dataclass(frozen=True)
class SinkThresholds:
    min_score: float = 0.05  # mean attention (per seeing query, over heads) that makes a token a sink in a layer
    primary_span: int = 4  # sinks at positions < primary_span are primary (BOS / first tokens)
    min_layers: int = 2  # a secondary sink must hold in at least this many layers (a band, not a blip)
    min_queries: int = 64  # candidates must be visible to at least this many queries


@dataclass
class Sink:
    position: int
    token: str
    kind: str  # "primary" | "secondary"
    layers: list[int]  # layers where the token is a sink
    appears: int  # first such layer
    fades: int  # last such layer
    peak_score: float  # max over layers of the sink score
    peak_layer: int
    mean_share: float  # mean over its layers of the share of all the layer's attention mass it receives
    massive: bool = False  # carries a massive activation (set by the activations analysis)
    massive_layers: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def sink_scores(layers: list[LayerAttention]) -> Tensor:
    """[layers, tokens]: attention received per seeing query, averaged over heads."""
    return torch.stack([(a.mass / a.visible.clamp(min=1)).mean(0) for a in layers])


def mass_share(layers: list[LayerAttention]) -> Tensor:
    """[layers, tokens]: each token's share of the layer's total attention mass (rows sum to 1)."""
    return torch.stack([a.mass.mean(0) / a.mass.mean(0).sum() for a in layers])


def find_sinks(layers: list[LayerAttention], tokens: list[str],
               thresholds: SinkThresholds = SinkThresholds()) -> list[Sink]:
    """Primary and secondary sinks, ordered by position, with the band of layers each holds in."""
    scores, shares = sink_scores(layers), mass_share(layers)
    visible = torch.stack([a.visible for a in layers])  # [layers, tokens]
    candidate = visible >= thresholds.min_queries
    candidate[:, : thresholds.primary_span] = True  # the first tokens are always candidates
    is_sink = (scores >= thresholds.min_score) & candidate
    found = []
    for pos in torch.nonzero(is_sink.any(0)).flatten().tolist():
        band = torch.nonzero(is_sink[:, pos]).flatten().tolist()
        primary = pos < thresholds.primary_span
        if not primary and len(band) < thresholds.min_layers:
            continue
        peak = int(scores[band, pos].argmax())
        found.append(Sink(
            position=pos, token=tokens[pos], kind="primary" if primary else "secondary", layers=band,
            appears=band[0], fades=band[-1], peak_score=round(float(scores[band[peak], pos]), 4),
            peak_layer=band[peak], mean_share=round(float(shares[band, pos].mean()), 4),
        ))
    return found
