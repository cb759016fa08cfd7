from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from tokensieve.core.view import LayerView
from tokensieve.kv.tova import TOVA


@dataclass
class TOVALayer(TOVA):
    """TOVA (Oren et al., arXiv 2401.06104) with one choice per layer: the newest query's attention averaged over
    all heads, as kvpress's TOVAPress (reviewed by one of the paper's authors) scores it, where `tova` chooses per
    KV head from its own query group. Run side by side, the two tell what choosing per head costs or buys."""

    name = "tova_layer"
    sweeps = False  # a variant, run beside tova where the bench asks for it
    peer_press: ClassVar[str] = "tova"  # the report compares it with kvpress's TOVAPress head to head

    def score(self, view: LayerView) -> Tensor:
        per_head = super().score(view)  # [batch, kv_heads, stored]
        return per_head.mean(1, keepdim=True).expand_as(per_head)
