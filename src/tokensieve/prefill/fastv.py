from __future__ import annotations

from dataclasses import dataclass

from tokensieve.prefill.skip import Stage, TokenSkip, layer_index


@dataclass
class FastV(TokenSkip):
    """FastV (Chen et al., "An Image is Worth 1/2 Tokens After Layer 2", arXiv 2403.06764), one stage: the
    attention map of layer K ranks the tokens, and from layer K + 1 on only the best `budget` share of them
    (sinks and the prompt's last `probe` tokens included) go on. Scored by the prompt's last queries rather than
    by every query, so that on text the question decides (the paper prunes image tokens by all queries).

    layer: K + 1, the first layer the kept tokens alone enter (a fraction of the depth, or a layer number)."""

    name = "fastv"

    layer: float = 0.5  # measured on SmolLM2 at 2k: a third of the depth loses needles that half keeps

    def stages(self, n_layers: int) -> list[Stage]:
        first = layer_index(self.layer, n_layers)
        return [Stage(probe=first - 1, layer=first, keep=self.budget.value)]
