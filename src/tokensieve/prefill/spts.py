from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.errors import TokensieveError
from tokensieve.prefill.probe import ffn_probe
from tokensieve.prefill.skip import Stage, TokenSkip, layer_index, stage_keeps


def _ranks(scores: Tensor) -> Tensor:
    """Scores -> their rank in (0, 1] along the last dim (scale-free, so two probes can be mixed)."""
    return (scores.argsort(-1).argsort(-1).float() + 1) / scores.shape[-1]


@dataclass
class SPTS(TokenSkip):
    """Self-Predictive Token Skipping ("Probe and Skip", Wu et al., arXiv 2601.13155), as multi-stage delayed
    pruning: at each stage layer the layer itself is probed before any token skips it, by partial attention (its
    own query/key projections for the prompt's last `probe` queries against every carried token, no full
    attention) and by a rank-`ltp_rank` proxy of its MLP predicting how much each token would still change. The
    two probes are mixed by rank (`ltp_weight`). Each stage keeps the same share of what reached it, so the
    last keeps `budget` of the prompt (0.25 over three stages: 63 %, 40 %, 25 %), at 40, 50 and 60 % of the depth.

    Departure: the paper uses its probes to let tokens skip one component (attention or MLP) of a layer and
    prunes progressively; here every stage prunes (the token leaves the remaining layers), which is what saves
    the projections and MLPs on CPU.

    stages: the stage layers, as fractions of the depth or layer numbers."""

    name = "spts"

    stage_layers: tuple[float, ...] = (0.4, 0.5, 0.6)
    ltp_rank: int = 32
    ltp_weight: float = 0.0  # measured at 8k: ranking by the MLP proxy doubles perplexity (42 vs 21); off

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.ltp_weight <= 1 or self.ltp_rank < 1:
            raise TokensieveError("ltp_weight must be in [0, 1] and ltp_rank >= 1")

    def stages(self, n_layers: int) -> list[Stage]:
        layers = [layer_index(d, n_layers) for d in self.stage_layers]
        if layers != sorted(set(layers)):
            raise TokensieveError(f"spts stage layers must increase, got {layers}")
        keeps = stage_keeps(self.budget.value, len(layers))
        return [Stage(probe=layer, layer=layer, keep=keep) for layer, keep in zip(layers, keeps, strict=True)]

    def token_scores(self, layer: torch.nn.Module, hidden: Tensor, position_embeddings, stage: Stage) -> Tensor:
        attention = super().token_scores(layer, hidden, position_embeddings, stage)
        if self.ltp_weight == 0:
            return attention
        change = ffn_probe(layer, hidden, self.ltp_rank)
        return (1 - self.ltp_weight) * _ranks(attention) + self.ltp_weight * _ranks(change)
